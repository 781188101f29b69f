"""The project outside its checkout, against the deployed lab: last in the suite, with the
catalog the files before left deployed (test_70's `reference` when the lab has none of theirs).

a. The built collection stands alone: a clone of HEAD (what is committed, not the working tree)
   built with `ansible-galaxy collection build`, installed into a venv holding only ansible-core
   and requirements.txt, beside copies of its dependency collections; `ansible-playbook
   agentfactory.fleet.agents` from a directory outside the checkout, with no ansible.cfg, deploys
   with the extra vars `agentfactory deploy --yes` passes, and a second run changes nothing.
b. The wheel built from the same clone, in a fresh venv, deploys from a directory outside the
   checkout with HOME and XDG_STATE_HOME of its own: its state lands there, none in the venv.
c. A deploy streamed as AWX / Receptor run it (`ansible-runner transmit | worker | process`,
   the worker in a private data directory and HOME of its own), with the kwargs the wheel's CLI
   builds for `deploy` (agentfactory_cli.runner.build_runner_kwargs), ends as b's direct run did:
   same status and rc, same ok/changed/failed/unreachable on every host.

Each part prints how long it took ([distribution] lines, shown with -s).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import ansible
import pytest
import yaml
from labcli import LAB, host_names, lab_dir
from test_20_agents import write_catalog
from test_70_secrets import reference

from agentfactory_cli import prune
from agentfactory_cli.lab import Lab
from agentfactory_cli.paths import project_root, state_dir
from agentfactory_cli.verbs import VERBS

ROOT = project_root()
# Where the `ansible` package put community.docker & co. beside the project venv's ansible-core.
VENV_COLLECTIONS = Path(ansible.__file__).resolve().parent.parent / "ansible_collections"
# No venv of the project's on it: each part runs the executables of its own venv.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)
DEPLOY_TIMEOUT = 900


@contextlib.contextmanager
def timed(label: str):
    started = time.monotonic()
    try:
        yield
    finally:
        print(f"\n[distribution] {label}: {time.monotonic() - started:.1f}s", flush=True)


def run(cmd: list, *, cwd: Path, env: dict | None = None, timeout: float = 600,
        **kwargs) -> subprocess.CompletedProcess:
    """A command that must succeed (for the setup steps): its output is shown when it does not."""
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, timeout=timeout, text=True,
                         capture_output="stdout" not in kwargs, **kwargs)
    if res.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {res.returncode}:\n{(res.stdout or '')[-3000:]}\n"
                    f"{(res.stderr or '')[-3000:]}")
    return res


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment with nothing of the caller's: no venv, no PYTHONPATH, no AGENTFACTORY_*,
    no ANSIBLE_*, a HOME of its own."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": SYSTEM_PATH, "HOME": str(home), "LANG": "C.UTF-8", **extra}


def pip_env() -> dict[str, str]:
    """The caller's environment for pip (its index and warm cache), without the project's venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = SYSTEM_PATH
    return env


def new_venv(path: Path) -> Path:
    run([sys.executable, "-m", "venv", path], cwd=path.parent)
    return path / "bin"


def lab_files() -> tuple[Path, Path]:
    lab = Lab(LAB)
    return lab.inventory_path, lab.vault_password_file


def deploy_extravars() -> dict:
    """What `agentfactory deploy --yes` passes to playbooks/agents.yml (verbs.py, prune.py)."""
    extravars = VERBS["deploy"].extravars(argparse.Namespace(agent=None), None)
    return {**extravars, prune.CONFIRMED_VAR: True}


def recap(stdout: str) -> dict[str, dict[str, int]]:
    keys = ("ok", "changed", "unreachable", "failed", "skipped")
    return {m[1]: dict(zip(keys, map(int, m.groups()[1:]), strict=True)) for m in RECAP.finditer(stdout)}


def counts_of_stats(stats: dict) -> dict[str, dict[str, int]]:
    """playbook_on_stats as the CLI's --json reports it (runner.RECAP_KEYS)."""
    keys = {"ok": "ok", "changed": "changed", "failed": "failures", "unreachable": "dark", "skipped": "skipped"}
    hosts = sorted(set().union(*(stats.get(k) or {} for k in keys.values())))
    return {h: {ours: int((stats.get(theirs) or {}).get(h, 0)) for ours, theirs in keys.items()} for h in hosts}


def runs_in_checkout() -> set[Path]:
    runs = state_dir() / "runs"
    return set(runs.iterdir()) if runs.is_dir() else set()


def run_stats(artifacts: Path) -> dict[str, dict[str, int]]:
    for event in (artifacts / "job_events").glob("*.json"):
        doc = json.loads(event.read_text())
        if doc.get("event") == "playbook_on_stats":
            return counts_of_stats(doc["event_data"])
    pytest.fail(f"no playbook_on_stats event in {artifacts}")


def outcome(artifacts: Path) -> dict:
    """status, rc and per-host counts of a run, from ansible-runner's artifacts."""
    return {"status": (artifacts / "status").read_text().strip(), "rc": (artifacts / "rc").read_text().strip(),
            "hosts": run_stats(artifacts)}


def files_under(*roots: Path) -> set[str]:
    """Every file below the roots but bytecode (Python writes that on first import)."""
    return {str(p) for root in roots for p in root.rglob("*")
            if "__pycache__" not in p.parts and not p.is_dir()}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A directory outside the checkout; its venvs (hundreds of MB) go when the module ends."""
    path = tmp_path_factory.mktemp("distribution")
    assert ROOT not in path.parents
    yield path
    for venv in ("collection-venv", "wheel-venv"):
        shutil.rmtree(path / venv, ignore_errors=True)


@pytest.fixture(scope="module")
def catalog(bootstrapped):
    """The lab's catalog as the files before left it, if it is one of theirs (agents from the
    reference image archive); else test_70's `reference`. Deployed by part a."""
    path = lab_dir() / "group_vars" / "all" / "agents.yml"
    doc = yaml.safe_load(path.read_text()) if path.exists() else None
    agents = (doc or {}).get("agentfactory_agents") or []
    if not agents or any(a.get("image_source") != "archive" for a in agents):
        write_catalog(reference("small"))
        agents = reference("small")["agentfactory_agents"]
    print(f"\n[distribution] catalog: {', '.join(a['name'] for a in agents)}")
    return bootstrapped


@pytest.fixture(scope="module")
def clone(work):
    """HEAD of the checkout, cloned: what a release would be built from."""
    head = run(["git", "rev-parse", "HEAD"], cwd=ROOT).stdout.strip()
    path = work / "clone"
    with timed("clone"):
        run(["git", "clone", "--quiet", "--no-checkout", ROOT, path], cwd=work)
        run(["git", "checkout", "--quiet", "--detach", head], cwd=path)
    return path


@pytest.fixture(scope="module")
def collection(clone, work):
    """The built collection installed beside its dependencies, in a venv of ansible-core (the
    project venv's version) and requirements.txt only."""
    core = importlib.metadata.version("ansible-core")
    with timed("a: venv (ansible-core + requirements.txt), collection build and install"):
        bin_dir = new_venv(work / "collection-venv")
        run([bin_dir / "pip", "install", "-q", "--no-compile", f"ansible-core=={core}",
             "-r", clone / "requirements.txt"], cwd=work, env=pip_env())
        installed = {line.split("==")[0].lower() for line in run([bin_dir / "pip", "freeze"], cwd=work).stdout.split()}
        assert "agentfactory" not in installed and "ansible" not in installed, installed
        env = clean_env(work / "collection-home")
        run([bin_dir / "ansible-galaxy", "collection", "build", "--output-path", work / "dist"], cwd=clone, env=env)
        (tarball,) = (work / "dist").glob("agentfactory-fleet-*.tar.gz")
        collections = work / "collections"
        run([bin_dir / "ansible-galaxy", "collection", "install", "--offline", "--no-deps", "-p", collections, tarball],
            cwd=work, env=env)
        # Its declared dependencies and theirs, as the `ansible` package installed them here.
        pending = ["agentfactory.fleet"]
        seen = set()
        while pending:
            name = pending.pop()
            where = collections / "ansible_collections" / Path(*name.split("."))
            if name != "agentfactory.fleet":
                shutil.copytree(VENV_COLLECTIONS / Path(*name.split(".")), where, symlinks=True)
            deps = json.loads((where / "MANIFEST.json").read_text())["collection_info"]["dependencies"] or {}
            pending += [d for d in deps if d not in seen]
            seen |= set(deps)
    print(f"[distribution] a: dependencies copied: {', '.join(sorted(seen))}")
    return {"bin": bin_dir, "collections": collections, "tarball": tarball, "home": work / "collection-home",
            "root": collections / "ansible_collections" / "agentfactory" / "fleet"}


def test_the_built_collection_deploys_on_its_own(collection, catalog, work):
    inventory, password_file = lab_files()
    elsewhere = work / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    env = clean_env(collection["home"], ANSIBLE_COLLECTIONS_PATH=str(collection["collections"]),
                    # As the CLI sets them (runner.build_runner_kwargs); neither is needed to deploy.
                    ANSIBLE_INVENTORY_UNPARSED_FAILED="True", ANSIBLE_NOCOLOR="True")
    cmd = [collection["bin"] / "ansible-playbook", "agentfactory.fleet.agents", "-i", inventory,
           "--vault-password-file", password_file, "-e", json.dumps(deploy_extravars())]
    runs = []
    for attempt in ("first", "second"):
        with timed(f"a: ansible-playbook agentfactory.fleet.agents ({attempt} run)"):
            res = subprocess.run([str(c) for c in cmd], cwd=elsewhere, env=env, capture_output=True, text=True,
                                 timeout=DEPLOY_TIMEOUT)
        counts = recap(res.stdout)
        runs.append(counts)
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
        assert sorted(counts) == host_names(), res.stdout[-2000:]
        assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in counts.values()), counts
        if all(c["changed"] == 0 for c in counts.values()):
            break
    print(f"[distribution] a: {len(runs)} run(s), changed per host: "
          f"{[{h: c['changed'] for h, c in counts.items()} for counts in runs]}")
    assert all(c["changed"] == 0 for c in runs[-1].values()), f"the second run still changed: {runs[-1]}"


def test_the_collection_documents_its_filters(collection, work):
    if not list((collection["root"] / "plugins" / "filter").glob("*.yml")):
        pytest.skip("plugins/filter has no documentation files (*.yml) yet: ansible-doc has nothing to show")
    env = clean_env(collection["home"], ANSIBLE_COLLECTIONS_PATH=str(collection["collections"]))
    res = run([collection["bin"] / "ansible-doc", "-t", "filter", "agentfactory.fleet.agentfactory_env_dict"],
              cwd=work, env=env)
    assert "agentfactory_env_dict" in res.stdout


@pytest.fixture(scope="module")
def wheel(clone, work):
    """The wheel built from the clone, installed with its dependencies into a fresh venv."""
    with timed("b: wheel build and install into a fresh venv"):
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "wheel", clone], cwd=work,
            env=pip_env())
        (built,) = (work / "wheel").glob("agentfactory-*.whl")
        bin_dir = new_venv(work / "wheel-venv")
        # Bytecode on first import instead: compiling the `ansible` package takes half a minute.
        run([bin_dir / "pip", "install", "-q", "--no-compile", built], cwd=work, env=pip_env())
    venv = work / "wheel-venv"
    home = work / "wheel-home"
    return {"bin": bin_dir, "venv": venv, "home": home, "state": home / "xdg-state",
            "env": clean_env(home, XDG_STATE_HOME=str(home / "xdg-state"), XDG_CONFIG_HOME=str(home / "xdg-config")),
            "site": list(venv.glob("lib/python*/site-packages")), "share": venv / "share"}


@pytest.fixture(scope="module")
def wheel_deploy(wheel, catalog, work):
    """`agentfactory deploy --yes --json` of the wheel, run from a directory of its own."""
    inventory, password_file = lab_files()
    cwd = work / "wheel-cwd"
    cwd.mkdir(exist_ok=True)
    installed = wheel["site"] + [wheel["share"]]
    before = files_under(*installed)
    checkout_runs = runs_in_checkout()
    with timed("b: agentfactory deploy (wheel)"):
        res = subprocess.run([str(wheel["bin"] / "agentfactory"), "deploy", "--yes", "--json", "-i", str(inventory),
                              "--vault-password-file", str(password_file)],
                             cwd=cwd, env=wheel["env"], capture_output=True, text=True, timeout=DEPLOY_TIMEOUT)
    after = files_under(*installed)
    new_checkout_runs = runs_in_checkout() - checkout_runs
    return {"res": res, "added": sorted(after - before), "removed": sorted(before - after),
            "checkout_runs": sorted(map(str, new_checkout_runs))}


def test_the_wheel_deploys_from_outside_the_checkout(wheel, wheel_deploy):
    res = wheel_deploy["res"]
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    doc = json.loads(res.stdout)
    assert doc["status"] == "successful"
    assert sorted(doc["hosts"]) == host_names()
    assert all(c["failed"] == 0 and c["unreachable"] == 0 and c["changed"] == 0 for c in doc["hosts"].values()), doc
    # Its state under $XDG_STATE_HOME/agentfactory; nothing in the venv, nothing in the checkout.
    artifacts = Path(doc["artifacts"])
    assert artifacts.is_dir() and artifacts.parent == wheel["state"] / "agentfactory" / "runs", artifacts
    assert wheel_deploy["added"] == [] and wheel_deploy["removed"] == [], wheel_deploy
    assert wheel_deploy["checkout_runs"] == [], wheel_deploy["checkout_runs"]


# Transmit side: the request and kwargs the wheel's CLI builds for `deploy --yes`, sent as AWX
# sends a job. ansible-runner's streaming takes one inventory path (a string) and keeps the
# artifacts on the process side.
TRANSMIT = """
import json, sys
import ansible_runner
from agentfactory_cli import cli, prune, runner

inventory, password_file, private_data_dir = sys.argv[1:4]
args = cli.parse_args(["deploy", "--yes", "-i", inventory, "--vault-password-file", password_file])
req = cli.playbook_request(args)
prune.confirm(args, req, None)
kwargs = runner.build_runner_kwargs(req, runner.new_ident(req.verb))
kwargs.pop("artifact_dir")
(kwargs["inventory"],) = kwargs["inventory"]
kwargs["private_data_dir"] = private_data_dir
ansible_runner.run(streamer="transmit", _output=sys.stdout.buffer, **kwargs)
"""


def test_a_streamed_deploy_matches_the_direct_one(wheel, wheel_deploy, work):
    res = wheel_deploy["res"]
    if res.returncode != 0:
        pytest.skip("the direct deploy (wheel) failed: nothing to compare with")
    direct = json.loads(res.stdout)
    inventory, password_file = lab_files()
    dirs = {name: work / f"stream-{name}" for name in ("transmit", "worker", "process")}
    for path in dirs.values():
        path.mkdir(exist_ok=True)
    streams = {name: work / f"stream-{name}.jsonl" for name in ("transmit", "worker")}
    worker_home = work / "worker-home"
    with timed("c: transmit | worker | process"):
        with streams["transmit"].open("wb") as out:
            run([wheel["bin"] / "python", "-c", TRANSMIT, inventory, password_file, dirs["transmit"]],
                cwd=work, env=wheel["env"], stdout=out)
        kwargs = json.loads(streams["transmit"].read_text().splitlines()[0])["kwargs"]
        with streams["transmit"].open("rb") as inp, streams["worker"].open("wb") as out:
            run([wheel["bin"] / "ansible-runner", "worker", "--private-data-dir", dirs["worker"]],
                cwd=work, env=clean_env(worker_home), stdin=inp, stdout=out, timeout=DEPLOY_TIMEOUT)
        with streams["worker"].open("rb") as inp:
            run([wheel["bin"] / "ansible-runner", "process", dirs["process"], "--ident", kwargs["ident"]],
                cwd=work, env=clean_env(work / "process-home"), stdin=inp)
    # The same deploy as b: the wheel's playbook, the lab's inventory, the CLI's extra vars.
    assert kwargs["playbook"] == str(wheel["share"] / "agentfactory" / "collections" / "ansible_collections" /
                                     "agentfactory" / "fleet" / "playbooks" / "agents.yml")
    assert kwargs["inventory"] == str(inventory)
    assert kwargs["extravars"] == deploy_extravars()
    assert (worker_home / ".ansible").is_dir(), "the worker's ansible-playbook did not run with the worker's HOME"

    streamed_dir = dirs["process"] / "artifacts" / kwargs["ident"]
    direct_dir = Path(direct["artifacts"])
    streamed, reference_run = outcome(streamed_dir), outcome(direct_dir)
    print(f"[distribution] c: streamed {streamed['status']} rc={streamed['rc']}, direct {reference_run['status']} "
          f"rc={reference_run['rc']}; ok per host {[c['ok'] for c in streamed['hosts'].values()]}")
    assert reference_run["hosts"] == direct["hosts"]  # what the CLI reported is what ansible counted
    assert streamed["status"] == reference_run["status"] == "successful"
    assert streamed["rc"] == reference_run["rc"] == "0"
    keys = ("ok", "changed", "failed", "unreachable")
    assert ({h: {k: c[k] for k in keys} for h, c in streamed["hosts"].items()}
            == {h: {k: c[k] for k in keys} for h, c in reference_run["hosts"].items()})
