"""`make run` makes sure the RabbitMQ management UI it advertises answers."""
import shutil

import pytest

from trcommon.devstack import free_port
from trcommon.manage import enable_management_ui
from trcommon.settings import LocalSettings
from trcommon.testing import MGMT


def test_a_ui_that_answers_is_left_alone(capsys):
    url = MGMT.removesuffix("/api")
    assert enable_management_ui(LocalSettings(rabbitmq_management_url=url)) == url
    assert capsys.readouterr().out == ""


def test_without_rabbitmq_plugins_it_says_in_one_line_how_to_enable_the_ui(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    url = f"http://127.0.0.1:{free_port()}"
    assert enable_management_ui(LocalSettings(rabbitmq_management_url=url)) is None
    assert capsys.readouterr().out.splitlines() == [
        f"rabbitmq: the management UI ({url}) does not answer; enable it with "
        "`rabbitmq-plugins enable rabbitmq_management` on the broker's machine"]


@pytest.mark.skipif(shutil.which("rabbitmq-plugins") is None, reason="needs the broker's rabbitmq-plugins")
def test_a_silent_local_ui_is_enabled_with_rabbitmq_plugins_and_waited_for(capsys):
    # The plugin is already enabled on this broker (the tests use its API), so the real command succeeds and
    # changes nothing; nothing listens on this port, so the wait ends and says how.
    url = f"http://127.0.0.1:{free_port()}"
    assert enable_management_ui(LocalSettings(rabbitmq_management_url=url), wait_seconds=1) is None
    assert capsys.readouterr().out.splitlines() == [
        f"rabbitmq: the management UI ({url}) does not answer; enabling it "
        "(rabbitmq-plugins enable rabbitmq_management)",
        f"rabbitmq: the management UI ({url}) is not up (still no answer after 1 s); enable it with "
        "`rabbitmq-plugins enable rabbitmq_management` on the broker's machine"]
