import dataclasses

import pytest

from services.runtime.config import ConfigError, RuntimeSettings, load_settings


def test_reads_typed_values_from_prefixed_environment():
    settings = load_settings(
        environ={"C4A_GRPC_PORT": "6000", "C4A_KAFKA_IDEMPOTENCE": "true", "C4A_SHUTDOWN_GRACE_SECONDS": "2.5"}
    )
    assert settings.grpc_port == 6000
    assert settings.kafka_idempotence is True
    assert settings.shutdown_grace_seconds == 2.5
    assert settings.grpc_host == RuntimeSettings.grpc_host  # default kept


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("C4A_GRPC_PORT", "fifty", "C4A_GRPC_PORT must be an integer, got 'fifty'"),
        ("C4A_KAFKA_IDEMPOTENCE", "maybe", "C4A_KAFKA_IDEMPOTENCE must be a boolean"),
        ("C4A_SHUTDOWN_GRACE_SECONDS", "soon", "C4A_SHUTDOWN_GRACE_SECONDS must be a number"),
    ],
)
def test_malformed_value_names_the_variable(variable, value, expected):
    with pytest.raises(ConfigError, match=expected):
        load_settings(environ={variable: value})


def test_service_settings_extend_the_runtime_settings():
    @dataclasses.dataclass(frozen=True)
    class ConnectorSettings(RuntimeSettings):
        api_token: str
        platform_base_url: str | None = None

    with pytest.raises(ConfigError, match="C4A_API_TOKEN is required"):
        load_settings(ConnectorSettings, environ={})
    settings = load_settings(ConnectorSettings, environ={"C4A_API_TOKEN": "t", "C4A_GRPC_PORT": "7"})
    assert (settings.api_token, settings.grpc_port, settings.platform_base_url) == ("t", 7, None)
