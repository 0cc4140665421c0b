"""Settings from the environment: URLs, bootstrap servers, currencies and API keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.settings import DEFAULT_FX_TO_CNY, Settings, SettingsError, load_settings
from pipeline.up_banner import banner, keys_in_use


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable of the developer's shell or CI leaks into these tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = Settings()
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.clickhouse_url == "chdb:///.lifecycle/chdb"
    assert settings.embedded is False
    assert settings.input_topics == ("live-events", "chat-events", "order-events", "touch-events")
    assert settings.output_topics == ("user-scores", "lifecycle-triggers", "dead-letters")
    assert settings.fx_rates == DEFAULT_FX_TO_CNY
    assert settings.fx_rates is not DEFAULT_FX_TO_CNY
    assert (settings.silent_after_days, settings.churned_after_days) == (30.0, 90.0)
    assert settings.active_min_interactions == 10


def test_reads_unprefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka-1:9093,kafka-2:9093")
    monkeypatch.setenv("CLICKHOUSE_URL", "clickhouse://ch:9000/lifecycle")
    monkeypatch.setenv("TOPIC_ORDER", "orders")
    monkeypatch.setenv("SILENT_AFTER_DAYS", "14")
    monkeypatch.setenv("FX_RATES", '{"CNY": 1.0, "USD": 7.0}')
    monkeypatch.setenv("EMBEDDED", "true")
    settings = Settings()
    assert settings.kafka_bootstrap == "kafka-1:9093,kafka-2:9093"
    assert settings.clickhouse_url == "clickhouse://ch:9000/lifecycle"
    assert settings.input_topics[2] == "orders"
    assert settings.silent_after_days == 14.0
    assert settings.fx_rates == {"CNY": 1.0, "USD": 7.0}
    assert settings.embedded is True


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().api_port = 1


# -- chdb_path ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("chdb:///.lifecycle/chdb", Path(".lifecycle/chdb")),
        ("chdb:///rel/dir", Path("rel/dir")),
        ("chdb:////abs/dir", Path("/abs/dir")),
        ("chdb:////var/lib/lifecycle", Path("/var/lib/lifecycle")),
    ],
)
def test_chdb_path_relative_and_absolute(url: str, path: Path) -> None:
    assert Settings(clickhouse_url=url).chdb_path() == path


def test_chdb_path_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKHOUSE_URL", "chdb:////srv/chdb")
    assert Settings().chdb_path() == Path("/srv/chdb")
    assert Settings().chdb_path().is_absolute()


@pytest.mark.parametrize("url", ["memory://", "clickhouse://ch:9000/db"])
def test_chdb_path_of_a_non_chdb_url_is_an_error(url: str) -> None:
    with pytest.raises(SettingsError, match="not a chdb:// URL"):
        Settings(clickhouse_url=url).chdb_path()


def test_chdb_url_with_two_slashes_is_not_silently_truncated() -> None:
    # chdb://data is not one of the documented forms; it must be refused or read as "data",
    # never turned into the directory "ata".
    try:
        path = Settings(clickhouse_url="chdb://data").chdb_path()
    except (SettingsError, ValidationError):
        return
    assert path == Path("data")


@pytest.mark.parametrize(
    "url", ["postgres://db/x", "http://ch:8123", "/var/lib/chdb", "chdb", "CHDB-local:///x"]
)
def test_bad_clickhouse_url_scheme_is_rejected(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKHOUSE_URL", url)
    with pytest.raises(ValidationError, match="CLICKHOUSE_URL must be"):
        Settings()


# -- KAFKA_BOOTSTRAP ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["localhost:9092", "a:1,b:2", "a:1, b:2", "[::1]:9092"])
def test_bootstrap_with_ports_is_accepted(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", value)
    assert Settings().kafka_bootstrap == value


@pytest.mark.parametrize("value", ["localhost", "a:9092,b", "", "a:9092,"])
def test_bootstrap_without_port_is_rejected(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", value)
    with pytest.raises(ValidationError, match="needs host:port"):
        Settings()


@pytest.mark.parametrize("value", ["broker:", "broker:port"])
def test_bootstrap_port_must_be_a_number(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", value)
    with pytest.raises(ValidationError):
        Settings()


# -- currencies, load_settings -------------------------------------------------------------


def test_base_currency_needs_a_rate() -> None:
    with pytest.raises(ValidationError, match="BASE_CURRENCY XXX has no rate"):
        Settings(base_currency="XXX")
    assert Settings(base_currency="USD", fx_rates={"USD": 1.0}).base_currency == "USD"


def test_load_settings_turns_errors_into_one_settings_error() -> None:
    with pytest.raises(SettingsError, match="invalid configuration"):
        load_settings(kafka_bootstrap="nohost")
    assert load_settings(api_port=9001).api_port == 9001


# -- API keys -----------------------------------------------------------------------------


def test_api_keys_are_read_as_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", '["k1", "k2"]')
    monkeypatch.setenv("ADMIN_API_KEYS", '["root"]')
    settings = Settings()
    assert settings.user_keys() == {"k1", "k2", "root"}
    assert settings.admin_keys() == {"root"}
    assert "k1" not in repr(settings)  # secrets stay hidden
    settings.check_api_keys()


def test_empty_keys_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", "[]")
    with pytest.raises(SettingsError, match="API_KEYS is empty"):
        Settings().check_api_keys()
    with pytest.raises(SettingsError, match="API_KEYS is empty"):
        Settings(embedded=True).check_api_keys()


def test_admin_key_alone_is_enough() -> None:
    Settings(admin_api_keys=["boss"]).check_api_keys()  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("api_keys", "admin_keys", "producer_keys"),
    [('["dev"]', "[]", "[]"), ('["mine"]', '["dev-admin"]', "[]"),
     ('["dev", "mine"]', '["boss"]', "[]"), ('["mine"]', "[]", '["dev-producer"]')],
)  # fmt: skip
def test_dev_keys_are_refused_outside_the_embedded_default(
    api_keys: str, admin_keys: str, producer_keys: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEYS", api_keys)
    monkeypatch.setenv("ADMIN_API_KEYS", admin_keys)
    monkeypatch.setenv("PRODUCER_API_KEYS", producer_keys)
    with pytest.raises(SettingsError, match="embedded default only"):
        Settings().check_api_keys()
    monkeypatch.setenv("EMBEDDED", "1")
    Settings().check_api_keys()


def test_the_banner_says_which_keys_are_in_use_and_never_the_keys() -> None:
    assert keys_in_use({}) == "'dev' (read), 'dev-admin' (admin), 'dev-producer' (producer)"
    mine = {"API_KEYS": '["secret-a", "secret-b"]', "PRODUCER_API_KEYS": '["secret-p"]'}
    line = keys_in_use(mine)
    assert line == "2 read from API_KEYS, 'dev-admin' (admin), 1 producer from PRODUCER_API_KEYS"
    assert "secret" not in line


def test_the_banner_suggests_a_call_that_answers_with_or_without_the_demo() -> None:
    settings = Settings(clickhouse_url="memory://")
    assert "/v1/users/u00001" in banner(settings, True, True, Path("logs"))
    quiet = banner(settings, True, False, Path("logs"))
    assert "/v1/users/u00001" not in quiet
    assert "/v1/kpis" in quiet
