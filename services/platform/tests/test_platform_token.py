"""`python -m qunzhu token`: a development member token from embedded mode's key file, refused in production."""

from __future__ import annotations

import pytest

from qunzhu.cli import main


@pytest.fixture(autouse=True)
def no_keys_from_the_environment(monkeypatch):
    for name in ("GATEWAY_SECRET_KEY", "GATEWAY_JWT_SECRET", "GATEWAY_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def gateway_keys(data_dir):
    """The settings and token key the gateway itself uses for this data directory (it creates the key file)."""
    from gateway.crypto import jwt_key, load_keys
    from gateway.settings import GatewaySettings

    settings = GatewaySettings(data_dir=data_dir)
    return settings, jwt_key(settings, load_keys(settings))


def token(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["token", *argv])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exited.value.code or 0, out, err


def test_a_person_wide_token_the_gateway_accepts(tmp_path, capsys):
    from gateway.auth.tokens import verify

    settings, key = gateway_keys(tmp_path)  # as `make run` leaves it
    code, out, err = token(capsys, "--person", "telegram:42", "--data-dir", str(tmp_path))

    assert code == 0
    assert len(out.strip().splitlines()) == 1  # the token alone on stdout: TOKEN=$(make -s token …)
    subject = verify(key, settings, out.strip())
    assert (subject.subject, subject.community_id) == ("telegram:42", None)
    assert "telegram:42" in err and "person-wide" in err


def test_with_a_community_the_token_acts_in_that_community_only(tmp_path, capsys):
    from gateway.auth.tokens import verify

    settings, key = gateway_keys(tmp_path)
    code, out, _ = token(capsys, "--person", "telegram:42", "--community", "c-growth", "--data-dir", str(tmp_path))

    assert code == 0
    subject = verify(key, settings, out.strip())
    assert (subject.subject, subject.community_id) == ("telegram:42", "c-growth")


@pytest.mark.parametrize("variable", ["GATEWAY_SECRET_KEY", "GATEWAY_JWT_SECRET"])
def test_refused_when_the_keys_come_from_the_environment(tmp_path, capsys, monkeypatch, variable):
    gateway_keys(tmp_path)  # a key file exists too: the environment still wins, as in the gateway
    monkeypatch.setenv(variable, "a-production-secret")

    code, out, err = token(capsys, "--person", "telegram:42", "--data-dir", str(tmp_path))

    assert code == 2
    assert out == ""
    assert variable in err and "production" in err


def test_refused_before_the_gateway_created_its_key_file(tmp_path, capsys):
    code, out, err = token(capsys, "--person", "telegram:42", "--data-dir", str(tmp_path / "never-run"))

    assert code == 2
    assert out == ""
    assert "make run" in err
    assert not (tmp_path / "never-run").exists()  # nothing created: the gateway makes its own key


def test_refused_for_something_that_is_not_a_person(tmp_path, capsys):
    gateway_keys(tmp_path)
    code, out, err = token(capsys, "--person", "42", "--data-dir", str(tmp_path))

    assert code == 2
    assert out == "" and "telegram:42" in err
