"""Settings precedence: lakeline.toml < LAKELINE__SECTION__KEY < explicit overrides."""

from __future__ import annotations

import pytest

from lakeline.config import load_settings
from lakeline.errors import ConfigError


def test_defaults_without_a_file(tmp_path):
    s = load_settings(tmp_path, environ={})
    assert (s.queue.max_receive_count, s.queue.visibility_timeout, s.ingest.chunk_bytes) == (5, 180, 33554432)
    assert s.home == tmp_path.resolve()


def test_file_then_env_then_overrides(tmp_path):
    (tmp_path / "lakeline.toml").write_text("[queue]\nmax_receive_count = 3\nvisibility_timeout = 60\n")
    assert load_settings(tmp_path, environ={}).queue.max_receive_count == 3
    env = {"LAKELINE__QUEUE__MAX_RECEIVE_COUNT": "4"}
    s = load_settings(tmp_path, environ=env)
    assert (s.queue.max_receive_count, s.queue.visibility_timeout) == (4, 60)
    s = load_settings(tmp_path, {"queue.max_receive_count": 7}, environ=env)
    assert s.queue.max_receive_count == 7


def test_home_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKELINE_HOME", str(tmp_path))
    assert load_settings().home == tmp_path.resolve()


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[queue]\nmax_receive_count = 'x'\n", {}, "queue.max_receive_count must be int"),
        ("[nope]\na = 1\n", {}, "unknown section [nope]"),
        ("[queue]\nbogus = 1\n", {}, "unknown setting queue.bogus"),
        ("[queue\n", {}, "invalid TOML"),
        ("", {"LAKELINE__QUEUE__MAX_RECEIVE_COUNT": "abc"}, "environment LAKELINE__QUEUE__MAX_RECEIVE_COUNT"),
        ("", {"LAKELINE__NOPE": "1"}, "LAKELINE__NOPE is not LAKELINE__<SECTION>__<KEY>"),
        ("", {"LAKELINE__QUEUE__BATCH_SIZE": "11"}, "queue.batch_size must be 1..10"),
        ("[queue]\nvisibility_timeout = 1.5\n", {}, "queue.visibility_timeout must be int"),
    ],
)
def test_bad_settings_name_their_origin(tmp_path, toml, env, message):
    (tmp_path / "lakeline.toml").write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ=env)
    assert message in str(err.value)
    if toml and "environment" not in message and "must be 1..10" not in message:
        assert "lakeline.toml" in str(err.value)


def test_settings_pickle_for_worker_processes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`run --workers N` spawns processes that receive the settings by pickling."""
    import pickle

    from lakeline.config import load_settings

    (tmp_path / "lakeline.toml").write_text('[pipelines.carbon.dq]\nrules = [{kind = "not_null", column = "a"}]\n')
    s = load_settings(tmp_path)
    again = pickle.loads(pickle.dumps(s))
    assert again == s and again.pipelines["carbon"]["dq"]["rules"][0]["column"] == "a"
