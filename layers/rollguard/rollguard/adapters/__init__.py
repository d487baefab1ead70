"""AWS adapters: every boto3 call lives here, and every AWS failure (an error, or no answer) is a domain error."""
