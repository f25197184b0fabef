"""The chat webhook's Standard Webhooks verification against the specification's published test vector
(standard-webhooks: secret, id, timestamp, body and the `v1,` signature every conforming library reproduces),
so a platform signing with any of that specification's libraries is accepted — and the odd inputs are not."""

from __future__ import annotations

import pytest

from gateway.errors import WebhookUnauthorized
from gateway.webhooks.verify import sign_standard, verify_standard

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature: str = SIGNATURE, stamp: str = str(TIMESTAMP)) -> dict[str, str]:
    return {"webhook-id": MSG_ID, "webhook-timestamp": stamp, "webhook-signature": signature}


def test_the_published_vector_verifies_and_signs_alike():
    assert sign_standard(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE
    assert verify_standard(headers(), BODY, [SECRET], tolerance_s=300, now=TIMESTAMP + 10) == MSG_ID
    # A rotation: an old key's signature first, then the current one; and a second secret configured.
    rotated = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " + SIGNATURE
    assert verify_standard(headers(rotated), BODY, ["whsec_c2VjcmV0", SECRET], tolerance_s=300,
                           now=TIMESTAMP) == MSG_ID


@pytest.mark.parametrize(("hdrs", "body", "now", "reason"), [
    (headers(), b'{"test": 2432232315}', TIMESTAMP, "signature"),  # the body changed under the signature
    (headers(), BODY + b" ", TIMESTAMP, "signature"),
    (headers("v2," + SIGNATURE[3:]), BODY, TIMESTAMP, "signature"),  # not a version we accept
    (headers(stamp=str(TIMESTAMP + 1)), BODY, TIMESTAMP, "signature"),  # the timestamp swapped
    (headers(), BODY, TIMESTAMP + 301, "timestamp"),  # a replay past the tolerance
    (headers(stamp="1614265330.0"), BODY, TIMESTAMP, "timestamp"),
    ({"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP)}, BODY, TIMESTAMP, "missing"),
])
def test_odd_deliveries_of_the_vector_are_refused(hdrs, body, now, reason):
    with pytest.raises(WebhookUnauthorized) as refused:
        verify_standard(hdrs, body, [SECRET], tolerance_s=300, now=now)
    assert refused.value.reason == reason
