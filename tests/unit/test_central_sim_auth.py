"""Tokens: issue and verify, and every way a bad token is refused."""

import jwt
import pytest

from central_sim.auth import (
    TokenError,
    TokenPolicy,
    credentials_valid,
    issue_token,
    new_signing_key,
    verify_token,
)

KEY = "k" * 48
POLICY = TokenPolicy(audience="central-inventory", issuer="central-sim")
NOW = 1_800_000_000.0  # the simulator's clock, fixed: expiry is judged against it


def claims(**overrides: object) -> dict[str, object]:
    now = int(NOW)
    base: dict[str, object] = {
        "sub": "inventory-service",
        "aud": POLICY.audience,
        "iss": POLICY.issuer,
        "iat": now,
        "exp": now + 60,
        "jti": "id-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_issued_token_verifies_with_subject_audience_issuer_expiry_and_id() -> None:
    token = issue_token(
        service="inventory-service", key=KEY, policy=POLICY, ttl_seconds=900, now=NOW
    )

    verified = verify_token(token, key=KEY, policy=POLICY, now=NOW)

    assert verified["sub"] == "inventory-service"
    assert verified["aud"] == "central-inventory"
    assert verified["iss"] == "central-sim"
    assert verified["exp"] - verified["iat"] == 900
    assert verified["jti"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_each_token_has_a_unique_id() -> None:
    first = issue_token(service="s", key=KEY, policy=POLICY, ttl_seconds=60, now=NOW)
    second = issue_token(service="s", key=KEY, policy=POLICY, ttl_seconds=60, now=NOW)
    assert (
        jwt.decode(first, options={"verify_signature": False})["jti"]
        != jwt.decode(second, options={"verify_signature": False})["jti"]
    )


def test_expired_token_is_refused() -> None:
    token = issue_token(service="s", key=KEY, policy=POLICY, ttl_seconds=10, now=NOW - 3600)
    with pytest.raises(TokenError, match="expired"):
        verify_token(token, key=KEY, policy=POLICY, now=NOW)


def test_forged_signature_is_refused() -> None:
    token = issue_token(service="s", key=KEY, policy=POLICY, ttl_seconds=60, now=NOW)
    header, _payload, signature = token.split(".")
    forged_payload = jwt.encode(claims(sub="order-service"), KEY, algorithm="HS256").split(".")[1]
    with pytest.raises(TokenError, match="signature"):
        verify_token(f"{header}.{forged_payload}.{signature}", key=KEY, policy=POLICY, now=NOW)


def test_alg_none_token_is_refused() -> None:
    unsigned = jwt.encode(claims(), key=None, algorithm="none")
    with pytest.raises(TokenError, match="algorithm"):
        verify_token(unsigned, key=KEY, policy=POLICY, now=NOW)


def test_other_hmac_algorithm_is_refused() -> None:
    token = jwt.encode(claims(), KEY + "x" * 16, algorithm="HS512")
    with pytest.raises(TokenError, match="algorithm"):
        verify_token(token, key=KEY, policy=POLICY, now=NOW)


def test_wrong_audience_is_refused() -> None:
    token = jwt.encode(claims(aud="someone-else"), KEY, algorithm="HS256")
    with pytest.raises(TokenError, match="audience"):
        verify_token(token, key=KEY, policy=POLICY, now=NOW)


def test_wrong_issuer_is_refused() -> None:
    token = jwt.encode(claims(iss="mallory"), KEY, algorithm="HS256")
    with pytest.raises(TokenError, match="issuer"):
        verify_token(token, key=KEY, policy=POLICY, now=NOW)


def test_token_signed_with_another_key_is_refused() -> None:
    """What every old token meets after a signing-key rotation."""
    token = issue_token(service="s", key=KEY, policy=POLICY, ttl_seconds=60, now=NOW)
    with pytest.raises(TokenError, match="signature"):
        verify_token(token, key=new_signing_key(), policy=POLICY, now=NOW)


@pytest.mark.parametrize("missing", ["exp", "aud", "iss", "sub", "jti"])
def test_token_without_a_required_claim_is_refused(missing: str) -> None:
    token = jwt.encode(claims(**{missing: None}), KEY, algorithm="HS256")
    with pytest.raises(TokenError):
        verify_token(token, key=KEY, policy=POLICY, now=NOW)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x"])
def test_malformed_token_is_refused(garbage: str) -> None:
    with pytest.raises(TokenError):
        verify_token(garbage, key=KEY, policy=POLICY, now=NOW)


def test_credentials_need_known_name_and_exact_secret() -> None:
    services = {"inventory-service": "s3cret"}
    assert credentials_valid(services, "inventory-service", "s3cret")
    assert not credentials_valid(services, "inventory-service", "s3cret ")
    assert not credentials_valid(services, "order-service", "s3cret")
    assert not credentials_valid(services, "inventory-service", "")
