import uuid

from hypothesis import given
from hypothesis import strategies as st

from qunzhu_common.ids import uuid4_str, uuid5_str

NAMESPACE = uuid.UUID("6f1d4a52-9a51-4c1e-8d0b-7d0f1a0c2a11")


@given(st.text())
def test_uuid5_str_is_the_standard_librarys_uuid5(name: str) -> None:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in name):  # not encodable: neither function takes it
        return
    assert uuid5_str(NAMESPACE, name) == str(uuid.uuid5(NAMESPACE, name))
    assert uuid5_str(uuid.NAMESPACE_URL, name) == str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def test_uuid4_str_is_a_canonical_random_version_4_uuid() -> None:
    seen = {uuid4_str() for _ in range(2000)}
    assert len(seen) == 2000
    for text in seen:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical: lower-case, dashed
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
