"""The real kubectl against the sandbox's cluster, with nothing but the kubeconfig the fake
writes (TLS verified against its CA, a bearer token): what an on-call engineer types in a
game day, and what they would see break if the fake stopped speaking Kubernetes."""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.sandbox.fake_kube import RESTARTED_AT, FakeKube, populate

KUBECTL = os.environ.get("OPSCONSOLE_KUBECTL") or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(
    KUBECTL is None,
    reason="kubectl is not installed (make test installs Debian's kubernetes-client through .ci/system-deps)",
)
NS = "production"


class Kubectl:
    def __init__(self, fake: FakeKube, home: Path):
        self.fake = fake
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                    "KUBECONFIG": str(fake.kubeconfig(home / "kubeconfig"))}  # fmt: skip
        self.cache = str(home / "kube-cache")  # discovery is cached per server: keep it to this test

    def argv(self, *args: str) -> list[str]:
        assert KUBECTL is not None
        return [KUBECTL, f"--cache-dir={self.cache}", *args]

    def __call__(self, *args: str, ok: bool = True, timeout: float = 60) -> str:
        """kubectl's output; asserts it exited 0 unless ok=False."""
        # A one-off request has a deadline; a follow or a watch (start()) must not: it would cut the stream.
        done = subprocess.run(
            self.argv("--request-timeout=30s", *args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if ok:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout + ("" if ok else done.stderr)

    def start(self, *args: str) -> Lines:
        return Lines(subprocess.Popen(self.argv(*args), env=self.env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))  # fmt: skip


class Lines:
    """A running kubectl whose output lines are read with a timeout."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next(self, timeout: float = 20) -> str | None:
        """The next line (None when the output ended); fails the test after `timeout` seconds."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"kubectl printed nothing for {timeout} s") from None

    def until(self, pattern: str, timeout: float = 20) -> str:
        seen = []
        while (line := self.next(timeout)) is not None:
            if re.search(pattern, line):
                return line
            seen.append(line)
        raise AssertionError(f"kubectl ended without printing {pattern!r}: {seen}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="module")
def world() -> Iterator[FakeKube]:
    """One cluster for the read-only tests."""
    with FakeKube() as fake:
        populate(fake)
        yield fake


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    """A cluster of its own for a test that changes it."""
    with FakeKube() as fake:
        populate(fake)
        yield fake


def _rows(output: str) -> list[list[str]]:
    """kubectl's table as rows of cells (the header first); cells are split on 2+ spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


def _bots(fake: FakeKube) -> list[str]:
    return [
        p["metadata"]["name"] for p in fake.objects("Pod", NS) if p["metadata"]["labels"]["app"] == "agis-bot"
    ]


def test_get_prints_the_columns_of_every_kind_the_console_shows(world, tmp_path):
    kubectl = Kubectl(world, tmp_path)
    pods = _rows(kubectl("get", "pods"))
    assert pods[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(pods) == 6 and {tuple(r[1:4]) for r in pods[1:]} == {("1/1", "Running", "0")}
    assert sorted(r[0] for r in pods[1:] if r[0].startswith("agis-bot-")) == sorted(_bots(world))
    wide = _rows(kubectl("get", "pods", "-o", "wide", "-l", "app=postgres"))
    assert wide[0][5:7] == ["IP", "NODE"] and wide[1][6].startswith("gke-agis-pool-1-")

    deployments = {r[0]: r[1:4] for r in _rows(kubectl("get", "deployments"))[1:]}
    assert deployments == {
        "agis-bot": ["3/3", "3", "3"],
        "minio": ["1/1", "1", "1"],
        "postgres": ["1/1", "1", "1"],
    }
    nodes = _rows(kubectl("get", "nodes"))
    assert nodes[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [(r[0], r[1], r[3]) for r in nodes[1:]] == [
        (f"gke-agis-pool-1-{x}", "Ready", "30d") for x in "abc"
    ]
    hpa = _rows(kubectl("get", "hpa"))
    assert hpa[0][:6] == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS"]
    assert hpa[1][:6] == ["agis-bot", "Deployment/agis-bot", "45%/70%", "2", "10", "3"]

    fleets = _rows(kubectl("get", "fleets"))
    assert fleets[0][:6] == ["NAME", "SCHEDULING", "DESIRED", "CURRENT", "ALLOCATED", "READY"]
    assert fleets[1][:6] == ["agis-fleet", "Packed", "20", "20", "7", "12"]
    servers = _rows(kubectl("get", "gameservers"))
    assert servers[0][:5] == ["NAME", "STATE", "ADDRESS", "PORT", "NODE"]
    states = [r[1] for r in servers[1:]]
    assert (len(states), states.count("Allocated"), states.count("Ready"), states.count("Shutdown")) == (
        20,
        7,
        12,
        1,
    )
    autoscalers = _rows(kubectl("get", "fleetautoscalers"))
    assert autoscalers[1][:4] == ["agis-gameservers", "agis-fleet", "20", "20"]
    # Short names and the staging context come from discovery and the kubeconfig.
    assert "No resources found in staging namespace" in kubectl(
        "get", "gs", "--context", "fake-staging", ok=False
    )
    assert _rows(kubectl("get", "po", "--context", "fake-staging"))[1][0].startswith("agis-bot-")


def test_describe_pod_and_deployment(fake, tmp_path):
    kubectl = Kubectl(fake, tmp_path)
    pod = sorted(_bots(fake))[0]
    fake.crashloop(NS, pod)
    described = kubectl("describe", "pod", pod)
    assert re.search(rf"^Name:\s+{pod}$", described, re.M)
    assert re.search(r"^Controlled By:\s+ReplicaSet/agis-bot-\w+$", described, re.M)
    assert re.search(r"^\s+Reason:\s+CrashLoopBackOff$", described, re.M)
    assert re.search(r"^\s+Restart Count:\s+1$", described, re.M)
    assert re.search(r"^\s+cpu:\s+500m$", described, re.M)
    assert re.search(
        rf"Warning\s+BackOff\s+.*kubelet.*Back-off restarting failed container agis-bot in pod {pod}_",
        described,
    )
    deployment = kubectl("describe", "deployment", "agis-bot")
    assert re.search(
        r"^Replicas:\s+3 desired \| 3 updated \| 3 total \| 2 available \| 1 unavailable$", deployment, re.M
    )
    assert re.search(r"^NewReplicaSet:\s+agis-bot-\w+ \(3/3 replicas created\)$", deployment, re.M)
    assert re.search(r"Normal\s+ScalingReplicaSet\s+.*Scaled up replica set agis-bot-\w+ to 3", deployment)


def test_scale_a_deployment_and_the_fleet(fake, tmp_path):
    kubectl = Kubectl(fake, tmp_path)
    assert (
        kubectl("scale", "deployment", "agis-bot", "--replicas=5").strip()
        == "deployment.apps/agis-bot scaled"
    )
    assert len(_bots(fake)) == 5 and fake.get("Deployment", NS, "agis-bot")["status"]["readyReplicas"] == 5
    assert _rows(kubectl("get", "deployment", "agis-bot"))[1][1] == "5/5"
    assert (
        kubectl("scale", "fleet", "agis-fleet", "--replicas=25").strip()
        == "fleet.agones.dev/agis-fleet scaled"
    )
    assert len(fake.objects("GameServer", NS)) == 25
    missing = kubectl("get", "deployment", "nope", ok=False)
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in missing


def test_rollout_restart_and_status(fake, tmp_path):
    kubectl = Kubectl(fake, tmp_path)
    old = set(_bots(fake))
    assert (
        kubectl("rollout", "restart", "deployment", "agis-bot").strip()
        == "deployment.apps/agis-bot restarted"
    )
    template = fake.get("Deployment", NS, "agis-bot")["spec"]["template"]
    assert RESTARTED_AT in template["metadata"]["annotations"]
    new = set(_bots(fake))
    assert len(new) == 3 and not old & new
    done = kubectl("rollout", "status", "deployment", "agis-bot", "--timeout=30s")
    assert done.strip() == 'deployment "agis-bot" successfully rolled out'

    # A crash-looping pod holds the rollout; status waits (on a watch) until it is replaced.
    fake.crashloop(NS, sorted(new)[0])
    waiting = kubectl.start("rollout", "status", "deployment", "agis-bot", "--timeout=60s")
    try:
        assert "2 of 3 updated replicas are available" in waiting.until("Waiting for deployment")
        fake.delete("Pod", NS, sorted(new)[0])
        assert waiting.until("rolled out") == 'deployment "agis-bot" successfully rolled out'
        assert waiting.process.wait(20) == 0
    finally:
        waiting.stop()


def test_logs_and_follow(fake, tmp_path):
    kubectl = Kubectl(fake, tmp_path)
    pod = sorted(_bots(fake))[0]
    tail = kubectl("logs", pod, "--tail=5").splitlines()
    assert len(tail) == 5 and all(
        re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z (INFO|DEBUG|WARN|ERROR) ", x) for x in tail
    )
    fake.log(NS, pod, "2026-11-23T10:00:00.000Z INFO  hello from the test")
    assert kubectl("logs", pod, "--tail=1").strip() == "2026-11-23T10:00:00.000Z INFO  hello from the test"

    follow = kubectl.start("logs", "-f", pod, "--tail=1")
    try:
        assert follow.next() == "2026-11-23T10:00:00.000Z INFO  hello from the test"
        fake.log(NS, pod, "2026-11-23T10:00:01.000Z WARN  a line written while following")
        assert follow.next() == "2026-11-23T10:00:01.000Z WARN  a line written while following"
        fake.delete("Pod", NS, pod)  # the pod goes: the stream ends and so does kubectl
        assert follow.next() is None and follow.process.wait(20) == 0
    finally:
        follow.stop()
    missing = kubectl("logs", "nope", ok=False)
    assert 'pods "nope" not found' in missing


def test_get_pods_watch_shows_a_crashloop_as_it_happens(fake, tmp_path):
    kubectl = Kubectl(fake, tmp_path)
    pod = sorted(_bots(fake))[0]
    watching = kubectl.start("get", "pods", "-l", "app=agis-bot", "-w")
    try:
        assert watching.next().split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        listed = {watching.next().split()[0] for _ in range(3)}
        assert listed == set(_bots(fake))
        fake.crashloop(NS, pod)
        assert watching.until(pod).split()[1:4] == ["0/1", "CrashLoopBackOff", "1"]
        fake.delete("Pod", NS, pod)  # the deployment replaces it: the new pod shows up
        replacement = watching.until("Running")
        assert replacement.split()[0] not in listed and replacement.split()[0].startswith("agis-bot-")
    finally:
        watching.stop()
