"""Sample attributes (numeric properties with units): the record, the workspace catalogue, recipes."""

from __future__ import annotations

import json
import sqlite3

import pytest

from core import recipe as rc
from core.records import Attribute, attributes_from_list, attributes_to_list, check_attributes
from core.runner import run_analysis
from core.workspace import Workspace


def test_attribute_record_normalises_and_refuses_bad_values():
    a = Attribute(" C-rate ", 2, " C ")
    assert (a.name, a.value, a.unit, a.label) == ("C-rate", 2.0, "C", "C-rate (C)")
    assert isinstance(a.value, float) and Attribute("x", 1.5).label == "x"
    with pytest.raises(ValueError, match="non-empty name"):
        Attribute("  ", 1.0)
    with pytest.raises(ValueError, match="finite"):
        Attribute("SOC", float("nan"), "%")
    with pytest.raises(TypeError, match="must be a number"):
        Attribute("SOC", "50", "%")
    with pytest.raises(TypeError, match="must be a number"):
        Attribute("SOC", True, "%")
    with pytest.raises(ValueError, match="given twice"):
        check_attributes([Attribute("SOC", 1.0), Attribute("soc", 2.0)])
    with pytest.raises(TypeError, match="Attribute records"):
        check_attributes([{"name": "SOC", "value": 1.0}])


def test_preset_attributes_outside_their_physical_range_are_refused_in_one_sentence(tmp_path):
    """A C-rate of -3 C or an SOC of 150 % (QA: both were stored and moved the trend across electrodes)."""
    for bad, words in [(Attribute("C-rate", -3.0, "C"), "C-rate -3 C is not possible: it must be 0 C or more"),
                       (Attribute("soc", 150.0, "%"), "soc 150 % is not possible: it must be between 0 and 100 %"),
                       (Attribute("SOC", -0.1, "%"), "between 0 and 100 %"),
                       (Attribute("cycles", -1.0, "-"), "cycles -1 is not possible: it must be a whole number, 0 or more"),
                       (Attribute("cycles", 2.5, "-"), "a whole number, 0 or more")]:
        with pytest.raises(ValueError, match=words):
            check_attributes([bad])
    ok = [Attribute("C-rate", 0.0, "C"), Attribute("SOC", 100.0, "%"), Attribute("cycles", 500.0, "-"),
          Attribute("state", -5.0),  # not a preset: not checked
          Attribute("temperature", -20.0, "°C")]
    assert check_attributes(ok) == tuple(ok)
    assert check_attributes([Attribute("C-rate", -2.0, "mA/cm²")])  # another unit: not checked
    ws = Workspace(tmp_path / "ws")
    s = ws.add_sample("a", "demo:pristine", spacing=0.4, source_options={"shape": [16, 16, 16], "seed": 0})
    with pytest.raises(ValueError, match="not possible"):
        ws.set_attributes(s.id, [Attribute("C-rate", -3.0, "C")])
    assert ws.get_sample(s.id).attributes == ()
    # a value stored before the check still reads and writes (a recipe of an older workspace)
    assert attributes_to_list([Attribute("C-rate", -3.0, "C")]) == [{"name": "C-rate", "value": -3.0, "unit": "C"}]


def test_attribute_list_round_trips_and_names_the_bad_entry():
    attrs = (Attribute("C-rate", 2.0, "C"), Attribute("cycles", 100, "-"), Attribute("porosity", 0.3))
    stored = attributes_to_list(attrs)
    assert stored[2] == {"name": "porosity", "value": 0.3}  # no unit: no key
    assert attributes_from_list(json.loads(json.dumps(stored))) == attrs
    assert attributes_from_list(None) == () and attributes_from_list([]) == ()
    with pytest.raises(ValueError, match=r"attributes\[1\] has unknown key"):
        attributes_from_list([{"name": "a", "value": 1}, {"name": "b", "value": 2, "colour": "red"}])
    with pytest.raises(ValueError, match=r"attributes\[0\]: .*finite"):
        attributes_from_list([{"name": "a", "value": float("inf")}])


def test_workspace_stores_attributes_with_the_sample(tmp_path):
    ws = Workspace(tmp_path / "ws")
    s = ws.add_sample("a", "demo:pristine", spacing=0.4, source_options={"shape": [16, 16, 16], "seed": 0},
                      attributes=[Attribute("C-rate", 1.0, "C")])
    b = ws.add_sample("b", "demo:pristine", spacing=0.4, source_options={"shape": [16, 16, 16], "seed": 1})
    assert s.attributes == (Attribute("C-rate", 1.0, "C"),) and b.attributes == ()
    got = ws.set_attributes(b.id, [Attribute("C-rate", 5.0, "C"), Attribute("SOC", 50.0, "%")])
    assert got.attributes == (Attribute("C-rate", 5.0, "C"), Attribute("SOC", 50.0, "%"))
    assert got.attribute("c-rate").value == 5.0 and got.attribute("cycles") is None
    ws2 = Workspace(tmp_path / "ws")  # reopened: the attributes come back, in order, with the sample
    assert [x.attributes for x in ws2.list_samples()] == [s.attributes, got.attributes]
    assert ws2.attribute_units() == {"C-rate": ("C",), "SOC": ("%",)}
    # other changes to the sample keep them; a downsampled copy carries them
    assert ws2.update_sample(b.id, name="b2").attributes == got.attributes
    assert ws2.add_downsampled_copy(b.id, 2).attributes == got.attributes
    with pytest.raises(ValueError, match="given twice"):
        ws2.set_attributes(b.id, [Attribute("SOC", 1.0), Attribute("SOC", 2.0)])
    assert ws2.get_sample(b.id).attributes == got.attributes  # a refused change changes nothing
    assert ws2.set_attributes(b.id, []).attributes == ()
    with pytest.raises(KeyError):
        ws2.set_attributes(999, [Attribute("SOC", 1.0)])
    ws2.delete_sample(s.id)
    con = sqlite3.connect(ws2.db_path)
    assert con.execute("SELECT COUNT(*) FROM sample_attributes WHERE sample_id = ?", (s.id,)).fetchone()[0] == 0
    con.close()


def test_a_workspace_written_before_attributes_opens_and_takes_them(tmp_path):
    ws = Workspace(tmp_path / "ws")
    s = ws.add_sample("old", "demo:pristine", spacing=0.4, source_options={"shape": [16, 16, 16], "seed": 0})
    con = sqlite3.connect(ws.db_path)
    con.execute("DROP TABLE sample_attributes")  # the catalogue as the code before attributes wrote it
    con.commit()
    con.close()
    ws = Workspace(tmp_path / "ws")
    assert ws.get_sample(s.id).attributes == () and ws.list_samples()[0].name == "old"
    assert ws.set_attributes(s.id, [Attribute("cycles", 10, "-")]).attributes == (Attribute("cycles", 10.0, "-"),)


def test_recipes_carry_attributes_and_old_recipes_have_none(tmp_path):
    ws = Workspace(tmp_path / "ws")
    s = ws.add_sample("c5", "demo:cycled-5C", spacing=0.4, source_options={"shape": [24, 24, 24], "seed": 0},
                      attributes=[Attribute("C-rate", 5.0, "C"), Attribute("cycles", 100.0, "-")])
    a = run_analysis(ws, s.id, ws.load_volume(s))
    recipe = rc.recipe_from_workspace(ws, [a.id])
    assert recipe.analyses[0].attributes == s.attributes
    text = rc.dumps(recipe)
    assert json.loads(text)["analyses"][0]["attributes"] == [
        {"name": "C-rate", "value": 5.0, "unit": "C"}, {"name": "cycles", "value": 100.0, "unit": "-"}]
    again = rc.loads(text)
    assert again.analyses[0].attributes == s.attributes and rc.dumps(again) == text
    # a sample without attributes writes no key: recipes stay as they were
    ws.set_attributes(s.id, [])
    d = rc.recipe_to_dict(rc.recipe_from_workspace(ws, [a.id]))
    assert "attributes" not in d["analyses"][0]
    assert rc.recipe_from_dict(d).analyses[0].attributes == ()
    d["analyses"][0]["attributes"] = [{"name": "C-rate", "value": "fast"}]
    with pytest.raises(rc.RecipeError, match=r"analyses\[0\] \('c5'\) attributes\[0\]: .*must be a number"):
        rc.recipe_from_dict(d)
    d["analyses"][0]["attributes"] = {"C-rate": 5}
    with pytest.raises(rc.RecipeError, match="must be a list"):
        rc.recipe_from_dict(d)
