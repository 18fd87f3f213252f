"""The docker/ recipes agree with the project: versions, entry points, no secrets in files."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


def _pin(name: str) -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(rf'"{re.escape(name)}([^"]*)"', text).group(1)


def test_ray_image_matches_the_pinned_ray():
    ray_pin = _pin("ray[tune]")  # ==2.60.*
    version = ray_pin.removeprefix("==").removesuffix(".*")
    assert f"rayproject/ray:{version}" in (DOCKER / "Dockerfile").read_text()
    kuberay = yaml.safe_load((DOCKER / "kuberay.yaml").read_text())
    assert kuberay["spec"]["rayVersion"].startswith(version)


def test_mlflow_image_matches_the_pinned_mlflow():
    assert _pin("mlflow") in (DOCKER / "mlflow.Dockerfile").read_text()


def test_compose_starts_a_head_and_a_gpu_worker_without_secrets():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert "ray start --head" in services["ray-head"]["command"]
    assert "ray start --address ray-head:6379" in services["ray-worker"]["command"]
    gpu = services["ray-worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    text = (DOCKER / "compose.yaml").read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET|TOKEN)\w*:\s", line):
            assert "${" in line, f"secret written into compose.yaml: {line.strip()}"
    for svc in services.values():  # published ports stay on loopback
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


def test_dockerfile_copies_paths_that_exist():
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY"):
            for src in line.split()[2:-1]:
                assert (ROOT / src).exists(), src


def test_cluster_launcher_recipe_parses():
    cfg = yaml.safe_load((DOCKER / "ray-cluster.yaml").read_text())
    assert cfg["available_node_types"]["gpu_worker"]["resources"]["GPU"] == 1
    assert any("--ray-client-server-port=10001" in c for c in cfg["head_start_ray_commands"])
