"""Every fast test gets its own history store: nothing is written to the user's ~/.local/state."""

import pytest


@pytest.fixture(autouse=True)
def _own_history(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBUILD_HOME", str(tmp_path_factory.mktemp("sbuild-home")))
