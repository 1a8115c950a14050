"""The sweep config and the plan's cache keys (no Ray): what a sweep file means, which edits re-run which stages,
and bad sweep files rejected in one line with exit 2 before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgesep.cli.main import main
from edgesep.errors import ConfigError
from edgesep.farm import load_sweep, sweep_from_dict
from edgesep.farm.plan import make_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sweep_digits.toml"


def raw_sweep(**changes) -> dict:
    raw = {
        "output": "out",
        "devices": ["local", "pi-emulated-local"],
        "models": [{"name": "digits", "factory": "default", "input_shape": [1, 1, 16, 16]}],
        "recipes": [{"name": "int8", "mode": "int8"}, {"name": "int8-percentile", "mode": "int8", "activation_range": "percentile"}],
        "validate": {"runs": 5, "samples": 60},
    }
    raw.update(changes)
    return raw


def test_the_example_sweep_is_one_model_by_four_recipes_by_two_devices():
    sweep = load_sweep(EXAMPLE)
    assert sweep.cells == 8 and sweep.devices == ("local", "pi-emulated-local")
    assert sweep.output == EXAMPLE.parent / "out-sweep-digits"
    assert [r.name for r in sweep.recipes] == ["int8", "int8-percentile", "float16", "dynamic"]
    model = sweep.models[0].pipeline  # examples/digits.toml with the sweep's [validate] on top
    assert model.validate.runs == 10 and model.validate.samples == 100 and model.validate.warmup == 2
    assert model.validate.fail_if_drop is None  # digits.toml's gate: the farm shows drops instead of failing
    assert model.calibration.samples == 300 and model.quantize.input_type == "float32"
    percentile = sweep.recipes[1].apply(model)
    assert percentile.quantize.modes == ("int8",) and percentile.quantize.activation_range == "percentile"
    assert percentile.quantize.input_type == "float32"  # the model's other [quantize] keys stay


def test_cells_are_edgesep_run_pipelines_with_one_mode_and_one_device(tmp_path):
    plan = make_plan(sweep_from_dict(raw_sweep(), base_dir=tmp_path))
    assert [c.label for c in plan.cells] == [
        "digits / int8 / local",
        "digits / int8 / pi-emulated-local",
        "digits / int8-percentile / local",
        "digits / int8-percentile / pi-emulated-local",
    ]
    cell = plan.cells[3].stage
    assert cell.pipeline.devices == ("pi-emulated-local",) and cell.pipeline.quantize.modes == ("int8",)
    assert cell.pipeline.quantize.activation_range == "percentile" and cell.pipeline.validate.runs == 5
    assert cell.folder == tmp_path / "out" / "digits" / "int8-percentile"
    assert len(plan.stages) == 1 + 2 + 4  # prepare once per model, quantize per recipe, validate per cell


def test_an_edit_changes_the_keys_of_exactly_the_stages_it_affects(tmp_path):
    def keys(raw) -> dict[str, str]:
        return {name: stage.key for name, stage in make_plan(sweep_from_dict(raw, base_dir=tmp_path)).stages.items()}

    before = keys(raw_sweep())
    assert before == keys(raw_sweep())  # deterministic
    recipes = raw_sweep()["recipes"]
    recipes[1] = {**recipes[1], "activation_range": "mse"}
    changed = {name for name, key in keys(raw_sweep(recipes=recipes)).items() if before[name] != key}
    assert changed == {
        "quantize/digits/int8-percentile",
        "validate/digits/int8-percentile/local",
        "validate/digits/int8-percentile/pi-emulated-local",
    }
    changed = {name for name, key in keys(raw_sweep(validate={"runs": 6, "samples": 60})).items() if before[name] != key}
    assert changed == {name for name in before if name.startswith("validate/")}
    changed = {name for name, key in keys(raw_sweep(calibration={"samples": 50})).items() if before[name] != key}
    assert changed == {name for name in before if not name.startswith("prepare/")}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"devices": []}, "devices: give a list of device names"),
        ({"devices": ["local", "nosuchboard"]}, "unknown device 'nosuchboard'"),
        ({"devices": ["local", "local"]}, "devices: 'local' appears twice"),
        ({"recipes": [{"name": "a", "mode": "int4"}]}, "recipes[0] (a): [quantize]: recipe mode must be one of float16, dynamic, int8"),
        ({"recipes": [{"name": "a", "mode": "int8", "activation_range": "max"}]}, "activation_range must be one of minmax, percentile"),
        ({"recipes": [{"name": "a", "mode": "int8", "per_channel": "yes"}]}, "quantize.per_channel = 'yes' has the wrong type"),
        ({"recipes": [{"name": "a", "mode": "int8"}, {"name": "a", "mode": "float16"}]}, "recipes: 'a' appears twice"),
        ({"recipes": [{"name": "../up", "mode": "int8"}]}, "name = '../up'"),
        (
            {"models": [{"name": "m", "onnx": "m.onnx"}], "recipes": [{"name": "cle", "mode": "int8", "equalize": True}]},
            "cle sets equalize, which acts on the PyTorch model",
        ),
        ({"models": [{"name": "m", "config": "run.toml", "factory": "default"}]}, "give either config or inline"),
        ({"models": [{"name": "m", "opset": "17"}]}, "model.opset = '17' has the wrong type"),
        ({"validate": {"runz": 3}}, "unknown key 'validate.runz'"),
    ],
)
def test_bad_sweeps_are_one_line_config_errors(tmp_path, changes, message):
    with pytest.raises(ConfigError) as caught:
        sweep_from_dict(raw_sweep(**changes), base_dir=tmp_path, source="sweep.toml")
    assert message in str(caught.value) and str(caught.value).startswith("sweep.toml: ")
    assert "\n" not in str(caught.value)


def test_the_cli_rejects_a_bad_sweep_with_exit_2_before_any_work(tmp_path, capsys):
    bad = tmp_path / "sweep.toml"
    bad.write_text(
        'devices = ["local"]\n[[models]]\nname = "m"\nfactory = "default"\n[[recipes]]\nname = "r"\nmode = "int3"\n', encoding="utf-8"
    )
    assert main(["farm", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"edgesep: error: {bad}: recipes[0] (r): [quantize]: recipe mode must be one of float16, dynamic, int8, got 'int3'"]
    assert main(["farm", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml not found" in capsys.readouterr().err
    assert not (tmp_path / "edgesep-farm").exists()


def test_the_single_machine_commands_never_import_ray(tmp_path):
    code = (
        "import sys\nfrom edgesep.cli.main import main\n"
        "for argv in (['--help'], ['farm', '--help'], ['run', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "import edgesep.farm, edgesep.farm.plan, edgesep.farm.driver, edgesep.farm.report\n"
        "heavy = sorted(m for m in ('ray', 'torch', 'tensorflow') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def record_every_stage(sweep) -> None:
    """Record each stage of the plan as done, with one small artifact file each (what a finished sweep leaves)."""
    from edgesep.fileio import write_json
    from edgesep.pipeline.cache import StepCache

    cache = StepCache.open(sweep.output)
    for name, stage in make_plan(sweep).stages.items():
        artifact = write_json(stage.folder / f"{name.replace('/', '_')}.json", {"stage": name})
        row = {"cosine": 0.999, "agreement": 100.0} if stage.kind == "validate" else None
        cache.record(name, stage.key, [artifact], result={"files": [artifact.name], "row": row})


def test_a_fully_cached_sweep_does_not_start_ray(tmp_path):
    """No stage to run: the table comes from state.json, no cluster is contacted (the address is never used)."""
    from edgesep.farm.driver import FarmOptions, farm

    sweep = sweep_from_dict(raw_sweep(devices=["local"]), base_dir=tmp_path)
    record_every_stage(sweep)
    result = farm(sweep, options=FarmOptions(address="ray://127.0.0.1:9", progress=False))
    assert [cell.status for cell in result.cells] == ["cached", "cached"] and result.nodes == 0
    assert result.cells[0].row == {"cosine": 0.999, "agreement": 100.0}
    assert (sweep.output / "sweep.json").is_file() and "| digits | int8 | local | cached |" in (sweep.output / "report.md").read_text()


def test_a_damaged_artifact_reruns_its_stage_and_the_stages_built_on_it(tmp_path):
    from edgesep.farm.driver import fresh_stages
    from edgesep.pipeline.cache import StepCache

    sweep = sweep_from_dict(raw_sweep(), base_dir=tmp_path)
    record_every_stage(sweep)
    plan = make_plan(sweep)
    assert fresh_stages(plan, StepCache.open(sweep.output)) == set(plan.stages)
    artifact = plan.stages["quantize/digits/int8"].folder / "quantize_digits_int8.json"
    artifact.write_text("edited")
    stale = set(plan.stages) - fresh_stages(plan, StepCache.open(sweep.output))
    assert stale == {"quantize/digits/int8", "validate/digits/int8/local", "validate/digits/int8/pi-emulated-local"}
    artifact.unlink()
    assert set(plan.stages) - fresh_stages(plan, StepCache.open(sweep.output)) == stale


def test_without_ray_installed_the_farm_says_which_extra_to_install(tmp_path):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(
        'devices = ["local"]\n[[models]]\nname = "m"\nfactory = "default"\n[[recipes]]\nname = "r"\nmode = "dynamic"\n', encoding="utf-8"
    )
    code = (
        "import sys\nsys.modules['ray'] = None  # as if the farm extra were not installed\n"
        f"from edgesep.cli.main import main\nsys.exit(main(['farm', {str(sweep)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "edgesep: error: edgesep farm needs Ray: pip install 'edgesep[farm]'"


def test_num_cpus_is_for_embedded_ray_only(tmp_path, capsys):
    assert main(["farm", str(EXAMPLE), "--address", "auto", "--num-cpus", "2"]) == 2
    assert "--num-cpus sizes embedded Ray" in capsys.readouterr().err
