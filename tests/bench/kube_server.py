"""The fake Kubernetes API in its own process for the watch benchmark, so the console's
CPU is measured without the server's: `python kube_server.py KUBECONFIG PODS GAMESERVERS`
prints "ready", then "churn N" on stdin streams N events/s, and EOF stops it."""

from __future__ import annotations

import sys

from console.sandbox.fake_kube import FakeKube, populate


def main() -> None:
    path, pods, gameservers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with FakeKube() as fake:
        populate(fake, pods=pods, gameservers=gameservers)
        fake.kubeconfig(path)
        print("ready", flush=True)
        for line in sys.stdin:
            command, _, value = line.strip().partition(" ")
            if command == "churn":
                fake.churn(float(value))
                print(f"churning {value}", flush=True)
            elif command == "count":
                print(fake.churned, flush=True)


if __name__ == "__main__":
    main()
