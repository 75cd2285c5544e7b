"""Past one host: Kubernetes manifests (deploy/kubernetes/) and the Slurm script (deploy/slurm/).

No cluster and no scheduler are needed.

* Kubernetes: every manifest is loaded with ``yaml.safe_load_all`` and validated in strict mode
  (unknown fields are errors) against the Kubernetes OpenAPI schemas that the
  ``kubernetes-validate`` package bundles (offline), for the oldest and the newest version checked
  here. Then sweep's own contract: the worker Job's command, GPU, restart policy, back-off and
  termination grace; the storage URL from the Secret; the data file from the volume; every
  ``sweep`` command line parsed by the real CLI (Click); names that refer to each other resolve;
  no password anywhere.
* Slurm: the ``#SBATCH`` header is parsed, and the script runs under ``bash`` in a fake
  scheduler environment (the variables ``sbatch`` sets) with ``sweep`` replaced on PATH by a shim
  that records its argv, environment and pid; the recorded command line is parsed by the real
  CLI. With PostgreSQL, two array tasks run the script with the real ``sweep`` to the budget.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml

from sweep.cli import cli
from tests.support.cli import run_sweep

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "kubernetes"
SLURM = REPO / "deploy" / "slurm" / "sweep-worker.sbatch"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
DOCKERFILE = REPO / "docker" / "worker.Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
README = REPO / "README.md"
VENV_BIN = Path(sys.executable).parent

#: Kubernetes versions whose schemas the manifests must pass: an old supported one and the newest.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
SWEEP_IMAGE = re.compile(r"^sweep-worker:(gpu|cpu)$")
SECRET_NAME = "sweep-db"
DATA_CLAIM = "sweep-data"
#: ``scheme://user:password@``: a storage URL with credentials written out. A placeholder filled
#: in later (``%s`` of printf, ``$VAR``, ``<password>``) is not a password.
CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:(?!%s@|\$|<)[^@\s/]+@")
_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

Doc = dict[str, Any]


# --- helpers: Kubernetes -------------------------------------------------------------------------


def _manifests() -> list[tuple[Path, Doc]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path, doc))
    return docs


def _find(kind: str, name: str) -> Doc:
    found = [d for _, d in _manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _pod_template(doc: Doc) -> Doc | None:
    if doc["kind"] == "Pod":
        return doc
    if doc["kind"] in ("Job", "Deployment", "StatefulSet"):
        return doc["spec"]["template"]
    return None


def _pods() -> Iterator[tuple[str, Doc]]:
    """(``Kind/name``, pod spec) of every workload."""
    for _, doc in _manifests():
        template = _pod_template(doc)
        if template is not None:
            yield f"{doc['kind']}/{doc['metadata']['name']}", template["spec"]


def _sweep_containers() -> Iterator[tuple[str, Doc, Doc]]:
    """(``Kind/name``, pod spec, container) of every container that runs the sweep image."""
    for where, spec in _pods():
        for container in spec.get("initContainers", []) + spec["containers"]:
            if container["image"].startswith("sweep-worker:"):
                yield where, spec, container


def _env(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def _expand(args: Sequence[str], container: Doc) -> list[str]:
    """Kubernetes' ``$(VAR)`` expansion of container args, with a sample value per variable."""
    env = _env(container)

    def sample(match: re.Match[str]) -> str:
        entry = env.get(match.group(1))
        assert entry is not None, f"{match.group(0)} names no env var: Kubernetes keeps it as is"
        if "value" in entry:
            return str(entry["value"])
        if "fieldRef" in entry.get("valueFrom", {}):
            return "0"
        raise AssertionError(f"{match.group(0)} expands a secret onto the command line")

    return [_K8S_VAR.sub(sample, str(a)) for a in args]


def _parse_sweep(args: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """Parse ``sweep ARGS`` with the real Click CLI; return the command's name and its params.

    Raises click's usage errors for an unknown command or option, a missing argument or a value
    its type or range check refuses.
    """
    group_ctx = click.Context(cli, info_name="sweep")
    name, command, rest = cli.resolve_command(group_ctx, list(args))
    assert name is not None and command is not None
    assert not isinstance(command, click.Group), f"`sweep {name}` needs a subcommand"
    with command.make_context(name, rest, parent=group_ctx) as ctx:
        return name, dict(ctx.params)


@pytest.fixture
def no_sweep_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Click reads SWEEP_* defaults from the environment: parse command lines without them."""
    for key in list(os.environ):
        if key.startswith("SWEEP_"):
            monkeypatch.delenv(key)


# --- Kubernetes: schema --------------------------------------------------------------------------


def test_the_manifest_set_is_complete() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in _manifests()}
    assert {
        ("Secret", SECRET_NAME),
        ("StatefulSet", "sweep-db"),
        ("Service", "sweep-db"),
        ("PersistentVolumeClaim", DATA_CLAIM),
        ("Job", "sweep-launch"),
        ("Job", "sweep-workers"),
        ("Deployment", "sweep-dashboard"),
        ("Service", "sweep-dashboard"),
        ("Deployment", "sweep-pooler"),
        ("Service", "sweep-pooler"),
    } <= kinds


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_pass_the_kubernetes_schemas_strictly(version: str) -> None:
    for path, doc in _manifests():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:  # pragma: no cover - the failure path
            pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {e}")


def test_the_schema_validator_is_not_vacuous() -> None:
    job = copy.deepcopy(_find("Job", "sweep-workers"))
    job["spec"]["paralelism"] = job["spec"].pop("parallelism")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSIONS[-1], strict=True)
    job = copy.deepcopy(_find("Job", "sweep-workers"))
    job["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSIONS[-1], strict=True)


# --- Kubernetes: the workers ---------------------------------------------------------------------


def test_worker_job_runs_sweep_worker_on_the_data_file_from_the_volume(no_sweep_env: None) -> None:
    job = _find("Job", "sweep-workers")
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert "command" not in container, "keep the image's entrypoint (it execs `sweep ARGS`)"
    name, params = _parse_sweep(_expand(container["args"], container))
    assert name == "worker"
    assert params["name"] == "notes"
    data = Path(params["data"])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    mount = next(m for p, m in mounts.items() if data.is_relative_to(p))
    assert mount["readOnly"] is True
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"] == {"claimName": DATA_CLAIM, "readOnly": True}
    assert params["storage"] is None


def test_worker_job_parallel_gpus_restarts_and_grace() -> None:
    job = _find("Job", "sweep-workers")
    spec = job["spec"]
    assert spec["parallelism"] >= 1
    assert spec["completions"] == spec["parallelism"]
    assert spec["completionMode"] == "Indexed"
    assert 1 <= spec["backoffLimit"] <= 10 * spec["parallelism"]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    assert pod["shareProcessNamespace"] is True, "a PID 1 that reaps the trial processes"
    (container,) = pod["containers"]
    resources = container["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    assert resources["requests"].get("nvidia.com/gpu", 1) == 1
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]
    # SIGTERM: kill the trial process (up to 30 s, sweep/run/isolation.py), record it as FAIL,
    # exit 130. At least what compose gives the same worker (stop_grace_period).
    compose = yaml.safe_load(COMPOSE.read_text())
    compose_grace = int(compose["x-worker"]["stop_grace_period"].rstrip("s"))
    assert pod["terminationGracePeriodSeconds"] >= max(compose_grace, 30 + 15)


def test_each_worker_pod_seeds_its_sampler_with_its_completion_index(no_sweep_env: None) -> None:
    (container,) = _find("Job", "sweep-workers")["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    reference = args[args.index("--worker-index") + 1]
    (variable,) = _K8S_VAR.fullmatch(reference).groups()  # type: ignore[union-attr]
    field = _env(container)[variable]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    assert _parse_sweep(_expand(args, container))[1]["worker_index"] == 0


# --- Kubernetes: launch, dashboard, database -----------------------------------------------------


def test_launch_job_creates_the_workers_study_and_runs_no_trial(no_sweep_env: None) -> None:
    launch = _find("Job", "sweep-launch")
    pod = launch["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("OnFailure", "Never")
    assert 1 <= launch["spec"]["backoffLimit"] <= 10
    assert "parallelism" not in launch["spec"] and "completions" not in launch["spec"]
    (container,) = pod["containers"]
    name, params = _parse_sweep(_expand(container["args"], container))
    assert name == "launch" and params["no_run"] is True
    (worker,) = _find("Job", "sweep-workers")["spec"]["template"]["spec"]["containers"]
    worker_params = _parse_sweep(_expand(worker["args"], worker))[1]
    assert params["study_name"] == worker_params["name"]
    assert params["data"] == worker_params["data"], "launch hashes the file the workers check"


def test_every_sweep_command_line_is_real(no_sweep_env: None) -> None:
    seen = set()
    for where, _, container in _sweep_containers():
        args = _expand(container.get("args", []), container)
        assert "command" not in container, f"{where}: keep the image's entrypoint"
        assert args, f"{where}: no args runs the image's default `sweep worker` by accident"
        if args[0] == "dashboard":  # handled by the image's entrypoint, not by the CLI
            assert '"${1:-}" = "dashboard"' in ENTRYPOINT.read_text()
            assert args == ["dashboard"], f"{where}: the dashboard takes no arguments"
            seen.add("dashboard")
            continue
        seen.add(_parse_sweep(args)[0])
    assert seen == {"launch", "worker", "dashboard"}


def test_unknown_sweep_options_would_be_caught(no_sweep_env: None) -> None:
    with pytest.raises(click.NoSuchOption):
        _parse_sweep(["worker", "notes", "--grace", "5"])
    with pytest.raises(click.UsageError):
        _parse_sweep(["wroker", "notes"])
    with pytest.raises(click.BadParameter):
        _parse_sweep(["worker", "notes", "--worker-index", "$(UNSET)"])


def test_dashboard_is_a_deployment_behind_a_cluster_internal_service() -> None:
    deployment = _find("Deployment", "sweep-dashboard")
    service = _find("Service", "sweep-dashboard")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP", "optuna-dashboard has no login"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    (port,) = service["spec"]["ports"]
    assert ports[port["targetPort"]] == int(_env(container)["SWEEP_DASHBOARD_PORT"]["value"])
    assert container["readinessProbe"]["httpGet"]["port"] in ports


def test_postgres_statefulset_keeps_its_data_and_reads_its_password_from_the_secret() -> None:
    db = _find("StatefulSet", "sweep-db")
    service = _find("Service", db["spec"]["serviceName"])
    labels = db["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["port"] == 5432
    (container,) = db["spec"]["template"]["spec"]["containers"]
    compose = yaml.safe_load(COMPOSE.read_text())
    assert container["image"] == compose["services"]["db"]["image"]
    env = _env(container)
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": SECRET_NAME,
        "key": "password",
    }
    assert env["PGDATA"]["value"].startswith("/var/lib/postgresql/data/")
    claims = {t["metadata"]["name"] for t in db["spec"]["volumeClaimTemplates"]}
    assert {m["name"] for m in container["volumeMounts"]} & claims
    assert "pg_isready" in container["readinessProbe"]["exec"]["command"]


def test_names_that_refer_to_each_other_resolve() -> None:
    secret = _find("Secret", SECRET_NAME)
    claims = {d["metadata"]["name"] for _, d in _manifests() if d["kind"].startswith("Persistent")}
    for where, spec in _pods():
        for container in spec["containers"]:
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET_NAME, where
                    assert ref["key"] in secret["stringData"], where
                    assert not ref.get("optional", False), f"{where}: a missing key must stop it"
            volumes = {v["name"] for v in spec.get("volumes", [])}
            templates = {"db"} if where.startswith("StatefulSet/") else set()
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes | templates, f"{where}: {mount['name']}"
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, where


def test_sweep_containers_run_the_project_image_as_its_user() -> None:
    user = [
        line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("USER")
    ]
    uid = int(user[-1].split(":")[0])
    found = 0
    for where, spec, container in _sweep_containers():
        found += 1
        assert SWEEP_IMAGE.match(container["image"]), f"{where}: {container['image']}"
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] == uid, where
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
        assert container["resources"]["requests"], where
    assert found == 3


# --- Kubernetes and Slurm: no password -----------------------------------------------------------


def test_no_password_is_written_anywhere() -> None:
    for path in [*K8S.glob("*.yaml"), SLURM]:
        text = path.read_text()
        assert not CREDENTIALS_IN_URL.search(text), f"{path.name} holds a URL with a password"
        assert "--storage" not in text, f"{path.name}: the storage URL belongs in the environment"
    # The Secret is a template whose placeholders fail safe (see secret.yaml), never real values.
    secret = _find("Secret", SECRET_NAME)
    assert "data" not in secret, "base64 `data` would hide a password from this test"
    assert secret["stringData"] == {"url": "REPLACE-ME", "password": ""}
    for where, _, container in _sweep_containers():
        storage = _env(container)["SWEEP_STORAGE"]
        assert storage["valueFrom"] == {"secretKeyRef": {"name": SECRET_NAME, "key": "url"}}, where
    for where, spec in _pods():
        for container in spec["containers"]:
            for entry in container.get("env", []):
                # A *_FILE variable names the file a secret is mounted at, not the secret.
                name = entry["name"]
                if re.search("PASSWORD|STORAGE|URL", name) and not name.endswith("_FILE"):
                    assert "value" not in entry, f"{where}: {name} written out"
            assert not any("://" in str(a) for a in container.get("args", [])), where


# --- Slurm ---------------------------------------------------------------------------------------


def _sbatch_header() -> dict[str, str]:
    """``#SBATCH`` options up to the first command line (where sbatch stops reading them)."""
    options: dict[str, str] = {}
    lines = SLURM.read_text().splitlines()
    assert lines[0] == "#!/bin/bash"
    for line in lines[1:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if stripped.startswith("#SBATCH"):
            for option in shlex.split(stripped[len("#SBATCH") :]):
                key, _, value = option.partition("=")
                assert key not in options, f"#SBATCH {key} twice"
                options[key] = value
    late = [
        x for x in lines if x.startswith("#SBATCH") and x.split()[1].split("=")[0] not in options
    ]
    assert not late, f"sbatch ignores #SBATCH lines after the first command: {late}"
    return options


def test_sbatch_header_one_gpu_per_array_task_requeued() -> None:
    options = _sbatch_header()
    assert re.fullmatch(r"1-\d+(%\d+)?", options["--array"])
    assert options["--gres"] == "gpu:1"
    assert options["--ntasks"] == "1"
    assert "--requeue" in options and "--no-requeue" not in options
    assert options["--open-mode"] == "append", "a requeued task must not truncate its log"
    assert "%a" in options["--output"]
    # SIGTERM to the batch shell (sweep itself, by exec) before the time limit.
    assert re.fullmatch(r"B:TERM@\d+", options["--signal"])
    assert {"--cpus-per-task", "--mem", "--time"} <= set(options)
    assert "--export" not in options


def _fake_slurm(tmp_path: Path, **extra: str) -> tuple[dict[str, str], Path]:
    """A scheduler environment for one array task, and a `sweep` shim that records its call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "record.json"
    shim = bin_dir / "sweep"
    shim.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith(('SWEEP_', 'SLURM_'))}\n"
        "json.dump({'argv': sys.argv[1:], 'env': env, 'pid': os.getpid()}, "
        f"open({str(record)!r}, 'w'))\n"
    )
    shim.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "SLURM_JOB_ID": "1007",
        "SLURM_ARRAY_JOB_ID": "1000",
        "SLURM_ARRAY_TASK_ID": "7",
        "SLURM_ARRAY_TASK_MIN": "1",
        "SLURM_ARRAY_TASK_MAX": "8",
        "SLURM_JOB_NAME": "sweep-worker",
        "SLURM_SUBMIT_DIR": str(tmp_path),
        "CUDA_VISIBLE_DEVICES": "0",
        **extra,
    }
    return env, record


def _storage_file(home: Path, url: str, mode: int = 0o600) -> Path:
    path = home / ".config" / "sweep" / "storage"
    path.parent.mkdir(parents=True)
    path.write_text(url + "\n")
    path.chmod(mode)
    return path


def _run_sbatch(
    args: Sequence[str], env: Mapping[str, str], cwd: Path
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the script as a batch step does (``bash SCRIPT ARGS``); return it and its pid."""
    proc = subprocess.Popen(
        ["bash", str(SLURM), *args],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), proc.pid


PASSWORD = "s3cr#t/pw"
URL = "postgresql+psycopg://sweep:s3cr%23t%2Fpw@db.cluster:5432/sweep?sslmode=require"


def test_sbatch_task_execs_one_worker_with_storage_from_a_private_file(
    tmp_path: Path, no_sweep_env: None
) -> None:
    env, record = _fake_slurm(tmp_path)
    _storage_file(Path(env["HOME"]), URL)
    data = tmp_path / "my.npz"
    data.write_bytes(b"npz")
    result, pid = _run_sbatch(["notes", str(data)], env, tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    assert seen["pid"] == pid, "exec: sweep must be the batch shell, so SIGTERM reaches it"
    assert seen["env"]["SWEEP_STORAGE"] == URL
    name, params = _parse_sweep(seen["argv"])
    assert name == "worker"
    assert params["name"] == "notes" and params["data"] == str(data)
    assert params["worker_index"] == 7 and params["storage"] is None
    for text in (" ".join(seen["argv"]), result.stdout, result.stderr):
        assert "s3cr" not in text and "@db.cluster" not in text
    assert "task 1000_7" in result.stderr


def test_a_requeued_task_reruns_the_same_worker_with_a_new_seed(
    tmp_path: Path, no_sweep_env: None
) -> None:
    data = tmp_path / "my.npz"
    data.write_bytes(b"npz")
    argvs = []
    for restarts in ("0", "1"):
        run_dir = tmp_path / f"run{restarts}"
        run_dir.mkdir()
        env, record = _fake_slurm(run_dir, SLURM_RESTART_COUNT=restarts, SWEEP_STORAGE=URL)
        result, _ = _run_sbatch(["notes", str(data)], env, run_dir)
        assert result.returncode == 0, result.stderr
        argvs.append(_parse_sweep(json.loads(record.read_text())["argv"])[1])
    first, again = argvs
    assert first.pop("worker_index") != again.pop("worker_index")
    assert first == again


def test_sbatch_reads_name_and_data_from_the_environment_and_passes_worker_options(
    tmp_path: Path, no_sweep_env: None
) -> None:
    data = tmp_path / "my.npz"
    data.write_bytes(b"npz")
    env, record = _fake_slurm(
        tmp_path, SWEEP_STORAGE=URL, SWEEP_STUDY="k562", SWEEP_DATA=str(data)
    )
    del env["SLURM_ARRAY_TASK_ID"]  # a plain job, not an array
    result, _ = _run_sbatch([], env, tmp_path)
    assert result.returncode == 0, result.stderr
    params = _parse_sweep(json.loads(record.read_text())["argv"])[1]
    assert (params["name"], params["data"], params["worker_index"]) == ("k562", str(data), 1007)
    record.unlink()
    result, _ = _run_sbatch(["k562", str(data), "--timeout", "80000"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    params = _parse_sweep(json.loads(record.read_text())["argv"])[1]
    assert params["timeout_s"] == 80000


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("group-readable file", "mode 640"),
        ("no storage at all", "no storage URL"),
        ("sqlite storage", "must be a postgresql:// URL"),
        ("empty file", "must be a postgresql:// URL"),
        ("no data file", "is not readable"),
        ("no arguments", "usage:"),
    ],
)
def test_sbatch_refuses_unsafe_or_missing_settings(
    tmp_path: Path, case: str, message: str
) -> None:
    env, record = _fake_slurm(tmp_path)
    home = Path(env["HOME"])
    data = tmp_path / "my.npz"
    data.write_bytes(b"npz")
    args = ["notes", str(data)]
    if case == "group-readable file":
        _storage_file(home, URL, mode=0o640)
    elif case == "sqlite storage":
        env["SWEEP_STORAGE"] = "sqlite:///sweep.db"
    elif case == "empty file":
        _storage_file(home, "")
    elif case == "no data file":
        env["SWEEP_STORAGE"] = URL
        args = ["notes", str(tmp_path / "absent.npz")]
    elif case == "no arguments":
        args = []
    result, _ = _run_sbatch(args, env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "s3cr" not in result.stderr
    assert not record.exists(), "sweep must not start"


def test_an_explicit_storage_variable_wins_over_the_file(
    tmp_path: Path, no_sweep_env: None
) -> None:
    env, record = _fake_slurm(tmp_path, SWEEP_STORAGE=URL)
    storage = _storage_file(Path(env["HOME"]), "sqlite:///other.db", mode=0o644)
    data = tmp_path / "my.npz"
    data.write_bytes(b"npz")
    result, _ = _run_sbatch(["notes", str(data)], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(record.read_text())["env"]["SWEEP_STORAGE"] == URL
    assert stat.S_IMODE(storage.stat().st_mode) == 0o644


@pytest.mark.postgres
def test_two_array_tasks_run_a_real_sweep_to_its_budget(
    postgres_url: str, synthetic_npz: Path, tmp_path: Path
) -> None:
    import optuna
    from sqlalchemy.engine import make_url

    study = "slurm-array"
    created = run_sweep(
        "launch",
        "--no-run",
        "--study",
        study,
        "--space",
        "tiny",
        "--data",
        str(synthetic_npz),
        "--n-trials",
        "3",
        "--sampler",
        "random",
        "--set",
        "epochs=1",
        storage=postgres_url,
    )
    assert created.returncode == 0, created.stderr
    procs = []
    for task in ("1", "2"):
        run_dir = tmp_path / f"task{task}"
        run_dir.mkdir()
        (run_dir / "home").mkdir()
        _storage_file(run_dir / "home", postgres_url)
        env = {
            "PATH": f"/usr/bin{os.pathsep}/bin",
            "HOME": str(run_dir / "home"),
            "SWEEP_VENV": str(VENV_BIN.parent),
            "PYTHONPATH": str(REPO),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SLURM_JOB_ID": f"20{task}",
            "SLURM_ARRAY_JOB_ID": "200",
            "SLURM_ARRAY_TASK_ID": task,
        }
        procs.append(
            subprocess.Popen(
                ["bash", str(SLURM), study, str(synthetic_npz)],
                env=env,
                cwd=run_dir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=300)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    password = str(make_url(postgres_url).password)
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
        assert password not in output
    trials = optuna.load_study(study_name=study, storage=postgres_url).get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2]
    assert {t.state for t in trials} == {optuna.trial.TrialState.COMPLETE}


# --- README --------------------------------------------------------------------------------------


def test_readme_more_machines_section_names_the_files_that_exist() -> None:
    text = README.read_text()
    assert "\n## More machines\n" in text
    section = text.split("\n## More machines\n", 1)[1].split("\n## ", 1)[0]
    assert text.index("## Containers") < text.index("## More machines")
    paths = set(re.findall(r"deploy/[A-Za-z0-9_./-]+[A-Za-z0-9_]", section))
    assert {"deploy/kubernetes", "deploy/slurm/sweep-worker.sbatch"} <= paths
    for path in paths:
        assert (REPO / path).exists(), path
    for phrase in ("sweep worker NAME", "grace period", "PostgreSQL", "SHA-256"):
        assert phrase in section, phrase


def test_the_pooler_reads_the_secrets_password_and_the_workers_can_use_it() -> None:
    pooler = _find("Deployment", "sweep-pooler")
    service = _find("Service", "sweep-pooler")
    labels = pooler["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["port"] == 6432
    spec = pooler["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = {k: v["value"] for k, v in _env(container).items()}
    assert env["SWEEP_DB_HOST"] == _find("Service", "sweep-db")["metadata"]["name"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "password")
    volume = next(v for v in spec["volumes"] if v["name"] == "password")
    assert volume["secret"]["secretName"] == SECRET_NAME
    (item,) = volume["secret"]["items"]
    assert item["key"] == "password"
    assert env["SWEEP_DB_PASSWORD_FILE"] == f"{mount['mountPath']}/{item['path']}"
    assert spec["securityContext"]["runAsNonRoot"] is True
    workers = _find("Job", "sweep-workers")["spec"]["template"]["spec"]["containers"][0]
    assert _env(workers)["SWEEP_DB_IDLE_CONNECTIONS"]["value"] in ("0", "1")
