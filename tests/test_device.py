"""The device profile: sourced defaults, validated overrides, round trip through a dict."""

import dataclasses
import json

import pytest

from bvn_plan.device import SOURCES, DeviceProfile
from bvn_plan.errors import InputError


def test_defaults_follow_bvn_facts_device_profile():
    p = DeviceProfile()
    assert p.introducer_diameter_mm == pytest.approx(3.4)
    assert (p.cannula_radius_mm, p.cannula_max_arc_deg) == (15.0, 90.0)
    assert (p.lesion_diameter_mm, p.lesion_length_mm, p.lesion_offset_mm) == (10.0, 14.0, 3.0)
    assert (p.set_temperature_c, p.duration_s) == (85.0, 900.0)
    # the heating segment (two electrodes and the gap) is centred where the lesion is centred
    assert p.active_length_mm / 2 == pytest.approx(p.lesion_offset_mm)


def test_every_field_has_a_source():
    names = {f.name for f in dataclasses.fields(DeviceProfile)}
    assert names == set(SOURCES)
    assert all(SOURCES[n].strip() for n in names)


def test_round_trip_through_json():
    p = DeviceProfile().replace(name="long", lesion_length_mm=18.0, lesion_model="bioheat")
    back = DeviceProfile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p
    assert back.lesion_length_mm == 18.0 and back.lesion_model == "bioheat"


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DeviceProfile().set_temperature_c = 90.0


@pytest.mark.parametrize("overrides, words", [
    ({"lesion_diameter_mm": 0.0}, "lesion_diameter_mm"),
    ({"duration_s": -5.0}, "duration_s"),
    ({"set_temperature_c": 30.0}, "body temperature"),
    ({"lesion_model": "sphere"}, "lesion_model"),
    ({"electrode_diameter_mm": 4.0}, "thinner than the introducer"),
    ({"cannula_max_arc_deg": 270.0}, "exceeds 180"),
    ({"lesion_length_mm": float("nan")}, "positive finite"),
    ({"tip_colour": "red"}, "unknown device profile field"),
])
def test_bad_values_raise_input_error(overrides, words):
    with pytest.raises(InputError, match=words):
        DeviceProfile().replace(**overrides)


def test_from_dict_rejects_non_mapping():
    with pytest.raises(InputError, match="mapping"):
        DeviceProfile.from_dict(["85", "900"])
