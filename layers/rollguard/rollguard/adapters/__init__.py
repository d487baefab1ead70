"""AWS adapters: every boto3 call lives here, and every ClientError becomes a domain error."""
