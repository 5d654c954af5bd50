from __future__ import annotations

from sbuild.mask import MASK, Masker


def test_secret_build_args_secret_sources_and_url_credentials_are_masked(monkeypatch) -> None:
    monkeypatch.setenv("NPM_TOKEN", "tok-from-env-123")
    m = Masker.for_build(
        ["API_KEY=abc123secret", "VERSION=1.2.3", "DB_PASSWORD=hunter22", "NPM_TOKEN"],
        ["id=aws,src=/home/me/.aws/credentials", "id=gh,env=GH_PAT"],
    )
    text = ("key abc123secret pw hunter22 tok tok-from-env-123 file /home/me/.aws/credentials "
            "version 1.2.3 url https://user:pa55@git.example.com/repo.git")
    out = m.text(text)
    for secret in ("abc123secret", "hunter22", "tok-from-env-123", "/home/me/.aws/credentials", "pa55", "user:"):
        assert secret not in out
    assert "1.2.3" in out
    assert out.count(MASK) == 5
