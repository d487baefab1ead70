"""CreateHostedConfigurationVersion's Description travels as an HTTP header: it must encode as a header does."""

import botocore.session
from rollguard.adapters.appconfig import header_text


def test_the_description_header_is_sent_in_ascii_as_http_client_encodes_it() -> None:
    model = botocore.session.get_session().get_service_model("appconfig")
    shape = model.operation_model("CreateHostedConfigurationVersion").input_shape.members["Description"]
    assert shape.serialization["location"] == "header"
    summary = "flag_off — us-east-1: new-pricing off: version 2 → 3 · by Rollguard…"
    sent = header_text(summary)
    assert sent == "flag_off - us-east-1: new-pricing off: version 2 -> 3 * by Rollguard..."
    sent.encode("latin-1")  # what http.client does with a header value; the em dash itself would raise
    assert header_text("naïve") == "na?ve"
