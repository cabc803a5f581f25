"""What the agent tells the portal about the weather decides whether its site gets targets."""
import pytest
from datas_agent.drivers.base import Conditions


@pytest.mark.parametrize(
    ("conditions", "status"),
    [
        (Conditions(), "unknown"),
        (Conditions(is_safe=True), "clear"),
        (Conditions(is_safe=True, weather={"cloud_cover": 0.1}), "clear"),
        (Conditions(weather={"cloud_cover": 0.4}), "partly_cloudy"),
        (Conditions(weather={"cloud_cover": 0.9}), "cloudy"),
        (Conditions(is_safe=True, weather={"rain_rate": 0.5}), "rain"),
        (Conditions(is_safe=False, weather={"humidity": 95.0}), "humid"),
        (Conditions(is_safe=False, weather={"wind_speed": 20.0, "cloud_cover": 0.0}), "wind"),
        # Unsafe with no cause named: never a status the scheduler would hand targets to.
        (Conditions(is_safe=False), "cloudy"),
    ],
)
def test_weather_status_from_sensors(conditions, status):
    assert conditions.weather_status() == status
