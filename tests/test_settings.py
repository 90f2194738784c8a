"""Logic settings come from the config in one place, by field name."""

from __future__ import annotations

import dataclasses

import pytest

from models.config import AnalyticsConfig, DeviceManagerConfig, GatewayConfig, IngestConfig, WorkloadConfig
from models.logic import AnalyticsSettings, AppSettings, CommandSettings, GatewaySettings, IngestSettings
from models.settings import settings_from
from sim.errors import ModelDefinitionError


@pytest.mark.parametrize(
    ("settings_type", "config", "given"),
    [
        (CommandSettings, DeviceManagerConfig(), {}),
        (GatewaySettings, GatewayConfig(), {}),
        (AppSettings, WorkloadConfig(), {}),
        (AnalyticsSettings, AnalyticsConfig(), {"replicas": ("db-replica-1",)}),
        (IngestSettings, IngestConfig(), {"on_conflict_do_nothing": True}),
    ],
)
def test_every_settings_field_is_the_config_field_of_that_name(settings_type, config, given) -> None:
    built = settings_from(settings_type, config, **given)
    for field in dataclasses.fields(settings_type):
        value = getattr(built, field.name)
        expected = given[field.name] if field.name in given else getattr(config, field.name)
        if hasattr(expected, "policy"):
            expected = expected.policy()  # a retry section becomes its policy
        assert value == expected or sorted(value) == sorted(expected)


def test_containers_follow_the_settings_types() -> None:
    ingest = settings_from(IngestSettings, IngestConfig(supported_schema_versions=[1, 2]), on_conflict_do_nothing=False)
    assert ingest.supported_schema_versions == frozenset({1, 2})
    analytics = settings_from(AnalyticsSettings, AnalyticsConfig(retry={"delays": [1.0, 2.0]}), replicas=("r",))
    assert analytics.retry.delays_s == (1.0, 2.0) and analytics.retry.max_attempts == 3  # a section becomes its policy


def test_a_settings_field_with_no_config_field_is_a_model_error() -> None:
    with pytest.raises(ModelDefinitionError, match="replicas"):
        settings_from(AnalyticsSettings, AnalyticsConfig())
    with pytest.raises(ModelDefinitionError, match="bogus"):
        settings_from(GatewaySettings, GatewayConfig(), bogus=1)
