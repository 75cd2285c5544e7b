"""The container side: Dockerfile, docker-compose.yml, entrypoint and their contract with the CLI.

No Docker engine is needed. Static tests read the files; the entrypoint tests run
docker/entrypoint.sh with ``sh``; the topology test takes the ``launch`` and ``worker`` services'
commands, environment and mounts from docker-compose.yml and runs them as local processes
against the local PostgreSQL: one launch, then two workers at once, on a 4-trial tiny sweep.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import ONE_SEED

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "docker" / "worker.Dockerfile"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
DOCKER_README = REPO / "docker" / "README.md"
DOCKERIGNORE = REPO / ".dockerignore"
DB_ENV_EXAMPLE = REPO / "docker" / "db.env.example"
POOLER_DOCKERFILE = REPO / "docker" / "pooler.Dockerfile"
POOLER_SCRIPT = REPO / "docker" / "pooler.sh"
VENV_BIN = Path(sys.executable).parent

# `${VAR}`, `${VAR:-default}`, `${VAR-default}`; `$$` is a literal dollar.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
)
_EXACT_TAG = re.compile(r"^[a-z0-9./_-]+:\d+\.\d+\.\d+[a-z0-9._-]*$")


# --- helpers -----------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of the forms this file uses."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group("name", "op", "default")
        value = env.get(name)
        if op == ":-" and not value:
            return default
        if op == "-" and value is None:
            return default
        return value or ""

    result = _INTERPOLATION.sub(replace, text)
    unresolved = re.search(r"\$\{[^}]*\}", result)
    if unresolved:
        raise ValueError(f"unsupported interpolation {unresolved.group(0)!r} in {text!r}")
    return result


def _dockerfile(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _dockerignore() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [x.strip().rstrip("/") for x in lines if x.strip() and not x.startswith("#")]


def _base_env() -> dict[str, str]:
    """This process's environment without any SWEEP_* variable, the venv first on PATH, and
    one seed per trial (``SWEEP_MAX_SEEDS=1``, as tests/support/cli.py gives every test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEP_")}
    env.update(ONE_SEED)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def _stub_sweep(tmp_path: Path) -> tuple[Path, Path]:
    """A `sweep` stand-in on PATH that records its argv and SWEEP_STORAGE, for entrypoint tests."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "record.json"
    stub = bin_dir / "sweep"
    stub.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'storage': os.environ.get('SWEEP_STORAGE')}}, "
        f"open({str(record)!r}, 'w'))\n"
    )
    stub.chmod(0o755)
    return bin_dir, record


def _run_entrypoint(
    args: list[str], env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class _Service:
    """A compose service as a local process: argv, environment, mounts mapped to host paths."""

    def __init__(self, compose: dict[str, Any], name: str, env: Mapping[str, str]) -> None:
        spec = compose["services"][name]
        command = spec["command"]
        if isinstance(command, str):
            self.argv = shlex.split(_interpolate(command, env))
        else:
            self.argv = [_interpolate(str(a), env) for a in command]
        environment = spec.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        self.mounts: dict[str, Path] = {}
        for volume in spec.get("volumes") or []:
            host, container = _interpolate(volume, env).split(":")[:2]
            host_path = Path(host)
            self.mounts[container] = host_path if host_path.is_absolute() else REPO / host_path
        self.env = {k: self.translate(_interpolate(str(v), env)) for k, v in environment.items()}
        self.argv = [self.translate(a) for a in self.argv]

    def translate(self, value: str) -> str:
        for container, host in self.mounts.items():
            if value == container or value.startswith(container + "/"):
                return str(host) + value[len(container) :]
        return value


# --- static: docker-compose.yml ------------------------------------------------------------------


def test_compose_has_the_four_services() -> None:
    services = _compose()["services"]
    assert {"db", "launch", "worker", "dashboard"} <= set(services)


def test_db_is_pinned_healthchecked_and_keeps_data_in_a_named_volume() -> None:
    compose = _compose()
    db = compose["services"]["db"]
    assert re.fullmatch(r"postgres:15\.\d+(-[a-z0-9]+)?", db["image"]), db["image"]
    test = db["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))
    named = [v.split(":")[0] for v in db["volumes"] if not v.startswith((".", "/", "$"))]
    assert named and all(name in compose["volumes"] for name in named)
    assert db["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "POSTGRES_PASSWORD" not in db["environment"]


def test_worker_waits_for_healthy_db_and_a_successful_launch() -> None:
    services = _compose()["services"]
    for name in ("worker", "dashboard"):
        depends = services[name]["depends_on"]
        assert depends["db"]["condition"] == "service_healthy"
        assert depends["launch"]["condition"] == "service_completed_successfully"
    assert services["launch"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "--no-run" in shlex.split(services["launch"]["command"])


def test_worker_reserves_one_nvidia_gpu_and_the_cpu_worker_none() -> None:
    services = _compose()["services"]
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "deploy" not in services["worker-cpu"]
    assert services["worker-cpu"]["profiles"] == ["cpu"]
    assert services["worker-cpu"]["command"] == services["worker"]["command"]


def test_dashboard_binds_loopback_by_default() -> None:
    ports = _compose()["services"]["dashboard"]["ports"]
    assert ports
    for port in ports:
        assert _interpolate(port, {}).startswith("127.0.0.1:"), port


def test_db_port_binds_loopback_by_default() -> None:
    for port in _compose()["services"]["db"].get("ports", []):
        assert _interpolate(port, {}).startswith("127.0.0.1:"), port


def test_no_password_literal_in_compose_or_env_example() -> None:
    for path in (COMPOSE, DB_ENV_EXAMPLE):
        text = path.read_text()
        assert not re.search(r"PASSWORD\s*[:=]\s*\S", text), path
        assert not re.search(r"://[^/\s:@]+:[^@\s/]+@", text), path
    compose = _compose()
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        keys = (
            environment
            if isinstance(environment, dict)
            else [e.split("=")[0] for e in environment]
        )
        for key in keys:
            assert "STORAGE" not in key, f"{name} sets {key}: storage URLs carry passwords"
            assert "PASSWORD" not in key or key.endswith("_FILE"), f"{name} sets {key}"
        for arg in shlex.split(str(service.get("command", ""))):
            assert "--storage" not in arg, f"{name} passes the storage URL on its command line"
    secret = compose["secrets"]["db_password"]
    assert set(secret) == {"file"}


def test_sweep_services_read_the_password_from_the_secret() -> None:
    compose = _compose()
    for name in ("launch", "worker", "worker-cpu", "dashboard"):
        service = compose["services"][name]
        assert service["secrets"] == ["db_password"], name
        assert service["environment"]["SWEEP_DB_PASSWORD_FILE"] == "/run/secrets/db_password"
        assert service["build"]["dockerfile"] == "docker/worker.Dockerfile"
        assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()


def test_compose_mounts_exist_and_are_read_only() -> None:
    compose = _compose()
    for name in ("launch", "worker"):
        for volume in compose["services"][name]["volumes"]:
            host, container, mode = _interpolate(volume, {}).split(":")
            assert mode == "ro", volume
            assert (REPO / host).is_dir(), volume
    launch = _Service(compose, "launch", {})
    space = Path(launch.argv[launch.argv.index("--space") + 1])
    assert space.is_file(), space
    assert Path(launch.env["SWEEP_DATA"]).is_file(), launch.env["SWEEP_DATA"]


def test_the_pooler_is_opt_in_reads_the_secret_and_the_sweep_services_can_use_it() -> None:
    services = _compose()["services"]
    pooler = services["pooler"]
    assert pooler["profiles"] == ["pooler"]
    assert "ports" not in pooler  # reached inside the compose network only
    assert pooler["secrets"] == ["db_password"]
    assert pooler["environment"]["SWEEP_DB_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert pooler["environment"]["SWEEP_DB_HOST"] == "db"
    assert pooler["depends_on"]["db"]["condition"] == "service_healthy"
    assert (REPO / pooler["build"]["context"] / pooler["build"]["dockerfile"]) == POOLER_DOCKERFILE
    through = {
        "SWEEP_DB_HOST": "pooler",
        "SWEEP_DB_PORT": "6432",
        "SWEEP_DB_IDLE_CONNECTIONS": "1",
    }
    for name in ("launch", "worker", "dashboard"):
        env = services[name]["environment"]
        assert {k: _interpolate(str(env[k]), {}) for k in through} == {
            "SWEEP_DB_HOST": "db",
            "SWEEP_DB_PORT": "5432",
            "SWEEP_DB_IDLE_CONNECTIONS": "0",
        }, name
        assert {k: _interpolate(str(env[k]), through) for k in through} == through, name


def test_the_pooler_image_runs_its_entrypoint_as_a_non_root_user() -> None:
    instructions = _dockerfile(POOLER_DOCKERFILE)
    keywords = [k for k, _ in instructions]
    assert "USER" in keywords and keywords.index("USER") < keywords.index("ENTRYPOINT")
    user = dict(instructions)["USER"]
    assert user not in ("root", "0")
    entrypoint = json.loads(dict(instructions)["ENTRYPOINT"])
    copies = [args.split() for k, args in instructions if k == "COPY"]
    assert any(c[-2] == "docker/pooler.sh" and c[-1] == entrypoint[0] for c in copies), copies
    assert os.access(POOLER_SCRIPT, os.X_OK)


@pytest.mark.parametrize(
    ("setting", "message", "code"),
    [
        ({"SWEEP_DB_PASSWORD_FILE": "/nonexistent/db_password"}, "missing or unreadable", 1),
        ({"SWEEP_POOLER_PORT": "64x"}, "'64x' is not a whole number", 2),
        ({"SWEEP_POOLER_SERVER_CONNECTIONS": "-1"}, "'-1' is not a whole number", 2),
    ],
)
def test_the_pooler_entrypoint_refuses_bad_settings_in_one_line(
    tmp_path: Path, setting: dict[str, str], message: str, code: int
) -> None:
    password = tmp_path / "db_password"
    password.write_text("s3cret")
    env = {
        "PATH": os.environ["PATH"],
        "SWEEP_DB_PASSWORD_FILE": str(password),
        "SWEEP_POOLER_DIR": str(tmp_path / "run"),
        **setting,
    }
    done = subprocess.run(
        ["sh", str(POOLER_SCRIPT)], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == code, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "s3cret" not in done.stderr + done.stdout
    assert not (tmp_path / "run").exists()  # nothing written before the settings are checked


def test_the_pooler_writes_transaction_mode_and_a_private_user_list(tmp_path: Path) -> None:
    password = tmp_path / "db_password"
    password.write_text('pa"ss\n')
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    # A stand-in pgbouncer that prints its arguments: the test reads what would be run.
    (fake_bin / "pgbouncer").write_text('#!/bin/sh\necho "pgbouncer $*"\n')
    (fake_bin / "pgbouncer").chmod(0o755)
    env = {
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
        "SWEEP_DB_PASSWORD_FILE": str(password),
        "SWEEP_DB_USER": "sweep",
        "SWEEP_POOLER_DIR": str(tmp_path / "run"),
        "SWEEP_POOLER_SERVER_CONNECTIONS": "7",
    }
    done = subprocess.run(
        ["sh", str(POOLER_SCRIPT)], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    ini = tmp_path / "run" / "pgbouncer.ini"
    assert done.stdout.strip() == f"pgbouncer {ini}"
    settings = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition("=") for line in ini.read_text().splitlines())
        if _ and not k.startswith(";")
    )
    assert settings["pool_mode"] == "transaction"
    assert settings["auth_type"] == "scram-sha-256"
    assert settings["default_pool_size"] == "7"
    assert settings["*"] == "host=db port=5432"
    userlist = tmp_path / "run" / "userlist.txt"
    assert userlist.read_text() == '"sweep" "pa""ss"\n'  # a double quote doubled
    assert (userlist.stat().st_mode & 0o077) == 0 and (
        (tmp_path / "run").stat().st_mode & 0o077
    ) == 0


# --- static: Dockerfile, .dockerignore, entrypoint ----------------------------------------------


def test_dockerfile_bases_are_pinned_to_exact_tags() -> None:
    bases = [args.split()[0] for keyword, args in _dockerfile() if keyword == "FROM"]
    assert bases
    for base in bases:
        assert _EXACT_TAG.match(base) and "latest" not in base, base


def test_dockerfile_runs_the_cli_as_a_non_root_user() -> None:
    instructions = _dockerfile()
    keywords = [k for k, _ in instructions]
    entry_at = len(keywords) - 1 - keywords[::-1].index("ENTRYPOINT")
    users = [args for k, args in instructions[:entry_at] if k == "USER"]
    assert users, "no USER before ENTRYPOINT"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]
    entrypoint = json.loads(instructions[entry_at][1])
    cmd = [json.loads(args) for k, args in instructions if k == "CMD"][-1]
    assert cmd == ["worker"]
    copies = [args.split() for k, args in instructions if k == "COPY"]
    installed = [c for c in copies if c[-2] == "docker/entrypoint.sh"]
    assert installed and installed[-1][-1] == entrypoint[0]
    lines = [x.strip() for x in ENTRYPOINT.read_text().splitlines() if x.strip()]
    assert lines[-1] == 'exec sweep "$@"'
    assert os.access(ENTRYPOINT, os.X_OK)


def test_dockerfile_variants_install_gpu_or_cpu_tensorflow_with_constraints() -> None:
    runs = " ".join(args for k, args in _dockerfile() if k == "RUN")
    assert 'gpu) extras="gpu,dashboard"' in runs
    assert 'cpu) extras="dashboard"' in runs
    assert "--constraint /tmp/constraints.txt" in runs
    constraints = (REPO / "docker" / "constraints.txt").read_text().splitlines()
    pins = [x for x in constraints if x and not x.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][A-Za-z0-9.+-]*", x) for x in pins)
    names = {x.split("==")[0].lower() for x in pins}
    assert {"tensorflow", "keras", "optuna", "optuna-dashboard", "psycopg", "sqlalchemy"} <= names


def test_dockerignore_excludes_local_state_but_keeps_the_build_inputs() -> None:
    ignored = set(_dockerignore())
    assert {".venv", ".git", "docker/secrets", "docker/db.env"} <= ignored
    sources = []
    for keyword, args in _dockerfile():
        if keyword == "COPY" and "--from=" not in args:
            sources += [a for a in args.split()[:-1] if not a.startswith("--")]
    assert "sweep" in sources and "pyproject.toml" in sources
    for source in sources:
        parts = Path(source).parts
        prefixes = {"/".join(parts[: i + 1]) for i in range(len(parts))}
        assert not prefixes & ignored, (
            f"{source} is needed by the build but .dockerignore drops it"
        )
        assert (REPO / source).exists(), f"{source} is copied by the Dockerfile but missing"


def test_every_knob_is_documented_in_the_docker_readme() -> None:
    readme = DOCKER_README.read_text()
    names = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE.read_text()))
    names |= set(re.findall(r"\b(SWEEP_[A-Z_]+)\b", ENTRYPOINT.read_text()))
    names |= set(re.findall(r"\b(SWEEP_[A-Z_]+)\b", POOLER_SCRIPT.read_text()))
    names |= {
        line.split("=")[0]
        for line in DB_ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    names = {n for n in names if not n.startswith("POSTGRES_")}
    missing = sorted(n for n in names if n not in readme)
    assert not missing, f"docker/README.md does not document {missing}"


# --- the entrypoint, run with sh -----------------------------------------------------------------


def test_entrypoint_builds_an_encoded_url_from_the_secret(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    bin_dir, record = _stub_sweep(tmp_path)
    password = "p@ss:w/rd%?#& x"
    secret = tmp_path / "db_password"
    secret.write_text(password + "\n")
    env = _base_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env.update(
        SWEEP_DB_PASSWORD_FILE=str(secret),
        SWEEP_DB_USER="sweep user",
        SWEEP_DB_HOST="db",
        SWEEP_DB_NAME="studies",
        SWEEP_DB_OPTIONS="sslmode=require",
    )
    result = _run_entrypoint(["worker", "--wait-for-db", "5"], env)
    assert result.returncode == 0, result.stderr
    assert password not in result.stdout + result.stderr
    seen = json.loads(record.read_text())
    assert seen["argv"] == ["worker", "--wait-for-db", "5"]
    url = make_url(seen["storage"])
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port) == ("sweep user", password, "db", 5432)
    assert url.database == "studies"
    assert dict(url.query) == {"sslmode": "require"}


def test_entrypoint_keeps_an_explicit_storage_and_refuses_a_missing_secret(tmp_path: Path) -> None:
    bin_dir, record = _stub_sweep(tmp_path)
    env = _base_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["SWEEP_DB_PASSWORD_FILE"] = str(tmp_path / "absent")
    env["SWEEP_STORAGE"] = "sqlite:///x.db"
    assert _run_entrypoint(["status", "s"], env).returncode == 0
    assert json.loads(record.read_text()) == {"argv": ["status", "s"], "storage": "sqlite:///x.db"}
    record.unlink()
    del env["SWEEP_STORAGE"]
    result = _run_entrypoint(["worker"], env)
    assert result.returncode == 1
    assert "missing or unreadable" in result.stderr
    assert not record.exists()


@pytest.mark.postgres
def test_entrypoint_secret_reaches_the_real_database(
    postgres_url: str, synthetic_npz: Path, tmp_path: Path
) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    secret = tmp_path / "db_password"
    secret.write_text(f"{url.password}\n")
    env = _base_env()
    env.update(
        SWEEP_DB_PASSWORD_FILE=str(secret),
        SWEEP_DB_USER=str(url.username),
        SWEEP_DB_HOST=str(url.host),
        SWEEP_DB_PORT=str(url.port or 5432),
        SWEEP_DB_NAME=str(url.database),
        SWEEP_STUDY="from-secret",
        SWEEP_DATA=str(synthetic_npz),
    )
    created = _run_entrypoint(["launch", "--no-run", "--space", "tiny", "--n-trials", "1"], env)
    assert created.returncode == 0, created.stderr
    listed = _run_entrypoint(["studies", "--format", "json"], env)
    assert listed.returncode == 0, listed.stderr
    assert "from-secret" in listed.stdout
    for result in (created, listed):
        assert str(url.password) not in result.stdout + result.stderr


def test_entrypoint_dashboard_serves_the_study(tmp_path: Path) -> None:
    import socket
    import time
    import urllib.error
    import urllib.request

    import optuna

    storage = f"sqlite:///{tmp_path / 'dash.db'}"
    optuna.create_study(study_name="shown", storage=storage)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _base_env()
    env.update(
        SWEEP_STORAGE=storage, SWEEP_DASHBOARD_HOST="127.0.0.1", SWEEP_DASHBOARD_PORT=str(port)
    )
    proc = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "dashboard"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    body = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/studies", timeout=5
                ) as r:
                    body = r.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        study_id = optuna.storages.get_storage(storage).get_study_id_from_name("shown")
        delete = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/studies/{study_id}", method="DELETE"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(delete, timeout=5)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert "shown" in body, stderr[-2000:]
    assert refused.value.code == 403  # `sweep dashboard`: read-only by default
    assert optuna.get_all_study_names(storage) == ["shown"]


# --- topology: the compose services as local processes -------------------------------------------


@pytest.mark.postgres
def test_compose_topology_runs_as_local_processes(
    postgres_url: str, synthetic_npz: Path, tmp_path: Path
) -> None:
    import optuna

    compose = _compose()
    study = "compose-topology"
    knobs = {
        "SWEEP_STUDY": study,
        "SWEEP_SPACE": "tiny",
        "SWEEP_N_TRIALS": "4",
        "SWEEP_SAMPLER": "random",
        "SWEEP_LAUNCH_ARGS": "--set epochs=1",
        "SWEEP_WAIT_FOR_DB": "30",
        "SWEEP_DATA_DIR": str(synthetic_npz.parent),
        "SWEEP_DATA_FILE": synthetic_npz.name,
        "SWEEP_SPACES_DIR": str(REPO / "search_spaces"),
    }
    launch = _Service(compose, "launch", knobs)
    worker = _Service(compose, "worker", knobs)
    assert launch.env["SWEEP_DATA"] == str(synthetic_npz)
    assert worker.env["SWEEP_DATA"] == str(synthetic_npz)
    assert "--set" in launch.argv and "epochs=1" in launch.argv
    assert postgres_url not in launch.argv + worker.argv

    def env_for(service: _Service, home: Path) -> dict[str, str]:
        home.mkdir(exist_ok=True)
        env = _base_env()
        env.update(service.env)
        env["SWEEP_STORAGE"] = postgres_url  # what the entrypoint builds from the secret
        env["HOME"] = str(home)
        return env

    result = subprocess.run(
        ["sh", str(ENTRYPOINT), *launch.argv],
        env=env_for(launch, tmp_path / "launch"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    procs = []
    for i in range(2):
        home = tmp_path / f"worker{i}"
        procs.append(
            subprocess.Popen(
                ["sh", str(ENTRYPOINT), *worker.argv],
                env=env_for(worker, home),
                cwd=home,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=240)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
        assert postgres_url not in output

    # A second `docker compose up` runs launch again: it must accept the existing study.
    again = subprocess.run(
        ["sh", str(ENTRYPOINT), *launch.argv],
        env=env_for(launch, tmp_path / "launch"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr[-3000:]

    listed = subprocess.run(
        ["sh", str(ENTRYPOINT), "trials", study, "--format", "json"],
        env=env_for(worker, tmp_path / "reader"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    if isinstance(rows, dict):
        rows = rows.get("trials", rows)
    assert [r["state"] for r in rows] == ["COMPLETE"] * 4
    assert sorted(r["number"] for r in rows) == [0, 1, 2, 3]

    frozen = optuna.load_study(study_name=study, storage=postgres_url).get_trials()
    assert len(frozen) == 4
    assert {t.state for t in frozen} == {optuna.trial.TrialState.COMPLETE}
    assert len({t.number for t in frozen}) == 4
