"""Run one molecule scenario's test sequence, one `molecule` command per step, with the Ansible
steps through Mitogen (the project's stoppable_mitogen strategy): one Python kept alive per host
for a whole playbook instead of one per task, about a quarter less time per scenario.

    .venv/bin/python molecule/_shared/run.py SCENARIO       # what `make molecule` runs
    MOLECULE_MITOGEN=0 .venv/bin/python molecule/_shared/run.py SCENARIO   # Ansible's own strategy

Create, prepare and destroy stay on Ansible's own strategy: the driver's playbooks run
docker_container under `async`, whose result Mitogen never delivers, and the scenarios' prepare
playbooks call apt on fresh hosts, which installs python3-apt and starts itself again under it,
which Mitogen cannot either (the roles install python3-apt first: roles/_common). The steps and
their order are the scenario's test_sequence (molecule.yml, else .config/molecule/config.yml);
.config/molecule/steps.yml makes each `molecule STEP` run that step alone. When a step fails, the
instances are destroyed and the exit code is 1. `molecule test -s SCENARIO` still works as ever.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / ".config" / "molecule" / "config.yml"
STEPS = ROOT / ".config" / "molecule" / "steps.yml"
# Steps on Ansible's own strategy (see above).
STOCK_STEPS = {"create", "prepare", "destroy"}


def test_sequence(scenario: str) -> list[str]:
    """The scenario's own test_sequence, else the shared one."""
    for path in (ROOT / "molecule" / scenario / "molecule.yml", SHARED):
        sequence = ((yaml.safe_load(path.read_text()) or {}).get("scenario") or {}).get("test_sequence")
        if sequence:
            return list(sequence)
    raise SystemExit(f"no test_sequence for scenario {scenario}")


def step_env(step: str, mitogen: bool) -> dict[str, str]:
    env = dict(os.environ)
    if mitogen and step not in STOCK_STEPS:
        env["ANSIBLE_STRATEGY"] = "agentfactory.fleet.stoppable_mitogen"
    return env


def molecule(step: str, scenario: str, mitogen: bool) -> int:
    command = [str(Path(sys.executable).parent / "molecule"), "-c", str(SHARED), "-c", str(STEPS),
               step.replace("_", "-"), "-s", scenario]
    return subprocess.run(command, cwd=ROOT, env=step_env(step, mitogen), check=False).returncode


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        raise SystemExit(__doc__)
    scenario = argv[0]
    mitogen = os.environ.get("MOLECULE_MITOGEN", "1") != "0" and importlib.util.find_spec("ansible_mitogen")
    print(f"--- scenario {scenario}, Ansible steps on {'Mitogen' if mitogen else 'Ansible'}'s strategy", flush=True)
    for step in test_sequence(scenario):
        start = time.monotonic()
        rc = molecule(step, scenario, bool(mitogen))
        print(f"--- {scenario}: {step} {'passed' if rc == 0 else f'FAILED (exit {rc})'} "
              f"in {time.monotonic() - start:.0f}s", flush=True)
        if rc != 0:
            if step != "destroy":
                molecule("destroy", scenario, False)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
