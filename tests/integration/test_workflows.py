"""The delivery pipeline, checked offline: workflows, Dependabot, the OIDC/role template.

actionlint and check-jsonschema run the real binaries from .venv (as `make lint` does);
the rest pins what a linter cannot know: the workflows go through the documented Makefile
targets only, every action is pinned to a commit, the deploy jobs hold exactly the OIDC
permissions, and the GitHub environments, samconfig.toml environments and the IAM trust
policy agree with each other.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github/workflows"
BIN = Path(sys.executable).parent
OIDC_TEMPLATE = ROOT / "ci/github-oidc.yaml"
#: A full commit SHA, and the release it was taken from in a trailing comment.
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<ref>\S+)\s+#\s+v\d+(?:\.\d+)*\s*$")
FULL_SHA_REF = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
#: Tools a workflow must not call directly: building, testing and deploying go through make.
BYPASS = re.compile(
    r"(?:^|[\s;&|(/])(sam|aws|pytest|pip3?|python3?|cfn-lint|checkov|ruff|mypy|webchecker)(?=\s|$)",
    re.MULTILINE,
)
MAKE_CALL = re.compile(r"(?:^|[\s;&|(])make\s+(?P<target>[a-z][a-z0-9-]*)(?P<args>[^\n;&|]*)")


def load_workflow(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def workflow_paths() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict[str, Any]]:
    return {path.name: load_workflow(path) for path in workflow_paths()}


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def make_calls(script: str) -> list[tuple[str, str]]:
    return [(m["target"], m["args"].strip()) for m in MAKE_CALL.finditer(script)]


def unpinned(text: str) -> list[str]:
    """Every `uses:` line that is not `owner/repo@<40 hex> # vX`."""
    bad = []
    for line in text.splitlines():
        if not re.match(r"^\s*(?:-\s+)?uses:", line):
            continue
        match = PINNED.match(line)
        if match is None or not FULL_SHA_REF.match(match["ref"]):
            bad.append(line.strip())
    return bad


def documented_targets() -> set[str]:
    """Targets with a `## name:` help line in the Makefile whose `make name` the README shows."""
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    helped = set(re.findall(r"^## ([a-z][a-z0-9-]*):", makefile, re.MULTILINE))
    defined = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.MULTILINE))
    return {t for t in helped & defined if re.search(rf"\bmake {t}\b", readme)}


class TestLinters:
    """The binaries `make lint` runs, on the real files and on a broken one."""

    def test_actionlint_is_clean(self) -> None:
        paths = [str(p) for p in workflow_paths()]
        assert paths, "no workflow found"
        result = subprocess.run(
            [str(BIN / "actionlint"), *paths], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout == ""

    def test_actionlint_catches_a_broken_workflow(self, tmp_path: Path) -> None:
        broken = tmp_path / ".github/workflows/broken.yml"
        broken.parent.mkdir(parents=True)
        broken.write_text(
            "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
            "    steps:\n      - run: echo ${{ github.no_such_context }}\n"
            "    needs: [missing-job]\n"
        )
        result = subprocess.run(
            [str(BIN / "actionlint"), str(broken)], capture_output=True, text=True, check=False
        )
        assert result.returncode != 0
        assert "missing-job" in result.stdout

    @pytest.mark.parametrize(
        ("schema", "files"),
        [
            ("vendor.github-workflows", [str(p) for p in workflow_paths()]),
            ("vendor.dependabot", [str(ROOT / ".github/dependabot.yml")]),
        ],
    )
    def test_the_files_match_their_schema(self, schema: str, files: list[str]) -> None:
        result = subprocess.run(
            [str(BIN / "check-jsonschema"), "--builtin-schema", schema, *files],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_the_schema_check_catches_an_unknown_key(self, tmp_path: Path) -> None:
        broken = tmp_path / "ci.yml"
        broken.write_text("on: push\njobs:\n  a:\n    runs-on: x\n    stepz: []\n")
        result = subprocess.run(
            [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", broken],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0

    def test_make_lint_runs_the_workflow_and_template_checks(self) -> None:
        makefile = (ROOT / "Makefile").read_text()
        lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
        for command in (
            "check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml",
            "actionlint .github/workflows/*.yml",
            "cfn-lint ci/github-oidc.yaml",
            "checkov --file ci/github-oidc.yaml",
        ):
            assert command in lint, command


class TestOneWayToBuildAndDeploy:
    def test_workflows_call_only_documented_make_targets(
        self, workflows: dict[str, dict[str, Any]]
    ) -> None:
        documented = documented_targets()
        called = {
            target
            for workflow in workflows.values()
            for _, step in steps(workflow)
            for target, _ in make_calls(step.get("run", ""))
        }
        assert called == {"test", "bench", "deploy", "smoke"}
        assert called <= documented, called - documented

    def test_no_step_calls_a_tool_around_make(self, workflows: dict[str, dict[str, Any]]) -> None:
        for name, workflow in workflows.items():
            for job_id, step in steps(workflow):
                found = BYPASS.findall(step.get("run", ""))
                assert found == [], f"{name} {job_id}: {step.get('name')}: {found}"

    def test_the_bypass_check_sees_a_raw_sam_deploy(self) -> None:
        assert BYPASS.findall("make build\nsam deploy --config-env prod") == ["sam"]
        assert BYPASS.findall(".venv-tools/sam/bin/sam deploy") == ["sam"]
        assert BYPASS.findall("make deploy ENV=staging && make smoke ENV=staging") == []

    def test_each_deploy_job_deploys_then_smokes_one_samconfig_environment(
        self, workflows: dict[str, dict[str, Any]]
    ) -> None:
        samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text())
        deploy = workflows["deploy.yml"]
        targets = {}
        for job_id, job in deploy["jobs"].items():
            calls = [call for step in job["steps"] for call in make_calls(step.get("run", ""))]
            assert [target for target, _ in calls] == ["deploy", "smoke"], job_id
            (_, deploy_args), (_, smoke_args) = calls
            assert deploy_args == smoke_args, job_id
            env = deploy_args.removeprefix("ENV=")
            assert env in samconfig, f"{job_id}: ENV={env} is not a samconfig.toml environment"
            targets[job["environment"]["name"]] = env
        assert targets == {"staging": "staging", "production": "prod"}


class TestPinnedActions:
    def test_every_action_is_pinned_to_a_full_commit_sha(self) -> None:
        for path in workflow_paths():
            text = path.read_text()
            assert "uses:" in text or path.name != "ci.yml"
            assert unpinned(text) == [], path.name

    def test_the_pin_check_rejects_tags_branches_and_short_shas(self) -> None:
        good = "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"
        assert unpinned(good) == []
        for bad in (
            "      - uses: actions/checkout@v7",
            "      - uses: actions/checkout@main",
            "      - uses: actions/checkout@3d3c42e # v7.0.1",
            "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",
            "      - uses: ./.github/actions/local",
        ):
            assert unpinned(bad) == [bad.strip()], bad

    def test_one_action_one_commit(self) -> None:
        """The same action is pinned to the same commit everywhere (one bump updates all)."""
        pins: dict[str, set[str]] = {}
        for path in workflow_paths():
            for action, sha in re.findall(r"uses:\s+([^@\s]+)@([0-9a-f]{40})", path.read_text()):
                pins.setdefault(action, set()).add(sha)
        assert pins
        assert {action: len(shas) for action, shas in pins.items()} == dict.fromkeys(pins, 1)


class TestPermissions:
    def test_deploy_jobs_hold_exactly_the_oidc_permissions(
        self, workflows: dict[str, dict[str, Any]]
    ) -> None:
        deploy = workflows["deploy.yml"]
        assert deploy["permissions"] == {}
        for job_id, job in deploy["jobs"].items():
            assert job["permissions"] == {"id-token": "write", "contents": "read"}, job_id

    def test_ci_can_only_read(self, workflows: dict[str, dict[str, Any]]) -> None:
        ci = workflows["ci.yml"]
        assert ci["permissions"] == {"contents": "read"}
        assert all("permissions" not in job for job in ci["jobs"].values())

    def test_deploy_jobs_assume_their_environments_role_through_oidc(
        self, workflows: dict[str, dict[str, Any]]
    ) -> None:
        for job_id, job in workflows["deploy.yml"]["jobs"].items():
            credentials = [
                step
                for step in job["steps"]
                if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
            ]
            assert len(credentials) == 1, job_id
            inputs = credentials[0]["with"]
            assert inputs["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
            assert "aws-access-key-id" not in inputs
            assert "aws-secret-access-key" not in inputs
            assert "secrets." not in str(job), f"{job_id} reads a secret"

    def test_missing_environment_variables_stop_the_job_before_aws(
        self, workflows: dict[str, dict[str, Any]]
    ) -> None:
        names = {"AWS_REGION", "AWS_DEPLOY_ROLE_ARN", "AWS_CLOUDFORMATION_ROLE_ARN"}
        for job_id, job in workflows["deploy.yml"]["jobs"].items():
            used = set(re.findall(r"vars\.([A-Z_]+)", str(job)))
            assert used == names, job_id
            order = [step.get("name", step.get("uses", "")) for step in job["steps"]]
            check = order.index("The environment's variables are set")
            credentials = next(
                i
                for i, name in enumerate(order)
                if "configure-aws-credentials" in str(name) or name.startswith("AWS credentials")
            )
            assert check < credentials, job_id
            assert set(job["steps"][check]["env"]) == names, job_id

    def test_production_waits_for_its_environment_and_runs_only_main(
        self, workflows: dict[str, dict[str, Any]]
    ) -> None:
        deploy = workflows["deploy.yml"]
        production = deploy["jobs"]["production"]
        assert production["environment"]["name"] == "production"
        assert "refs/tags/v" in production["if"]
        assert "workflow_dispatch" in production["if"]
        guard = " ".join(step.get("run", "") for step in production["steps"])
        assert 'git merge-base --is-ancestor "$GITHUB_SHA" origin/main' in guard
        assert deploy["on"]["push"]["branches"] == ["main"]
        staging = deploy["jobs"]["staging"]
        assert "refs/heads/main" in staging["if"]


class TestCi:
    def test_tests_run_on_the_lambda_runtime_and_the_oldest_supported_python(
        self, workflows: dict[str, dict[str, Any]]
    ) -> None:
        template = (ROOT / "template.yaml").read_text()
        runtime = re.search(r"Runtime: python(\d+\.\d+)", template)
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        oldest = re.fullmatch(r">=(\d+\.\d+)", pyproject["project"]["requires-python"])
        assert runtime is not None
        assert oldest is not None
        test = workflows["ci.yml"]["jobs"]["test"]
        assert set(test["strategy"]["matrix"]["python"]) == {runtime[1], oldest[1]}
        assert [c for s in test["steps"] for c in make_calls(s.get("run", ""))] == [("test", "")]
        assert set(workflows["ci.yml"]["on"]) >= {"pull_request", "push"}

    def test_the_tests_get_debian_chromium(self, workflows: dict[str, dict[str, Any]]) -> None:
        test = workflows["ci.yml"]["jobs"]["test"]
        assert "bookworm" in test["container"]
        installs = " ".join(
            s.get("run", "") for s in test["steps"] if "apt-get" in s.get("run", "")
        )
        assert re.search(r"apt-get install .*\bchromium\b", installs)

    def test_benchmarks_are_figures_never_a_gate(
        self, workflows: dict[str, dict[str, Any]]
    ) -> None:
        bench = workflows["ci.yml"]["jobs"]["benchmarks"]
        assert bench["continue-on-error"] is True
        assert "schedule" in bench["if"]
        assert "workflow_dispatch" in bench["if"]
        assert "pull_request" not in bench["if"]
        assert "push" not in bench["if"]
        scripts = "\n".join(s.get("run", "") for s in bench["steps"])
        assert "make bench" in scripts
        assert "$GITHUB_STEP_SUMMARY" in scripts

    def test_caches_are_keyed_on_what_they_hold(self, workflows: dict[str, dict[str, Any]]) -> None:
        for name, workflow in workflows.items():
            caches = [
                step["with"]
                for _, step in steps(workflow)
                if step.get("uses", "").startswith("actions/cache@")
            ]
            tools = [c for c in caches if c["path"] == ".venv-tools"]
            assert tools or (name == "ci.yml" and "benchmarks" in workflow["jobs"]), name
            for cache in tools:
                assert "hashFiles('requirements/tools*.txt')" in cache["key"], name


@pytest.fixture(scope="module")
def updates() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((ROOT / ".github/dependabot.yml").read_text())
    return {u["package-ecosystem"]: u for u in config["updates"]}


class TestDependabot:
    def test_pip_actions_and_tool_environments_weekly_one_pr_each(
        self, updates: dict[str, dict[str, Any]]
    ) -> None:
        assert set(updates) == {"pip", "github-actions"}
        for update in updates.values():
            assert update["schedule"]["interval"] == "weekly"
            assert [group["patterns"] for group in update["groups"].values()] == [["*"]]
        pip_dir = ROOT / updates["pip"]["directory"].lstrip("/")
        names = {p.name for p in pip_dir.glob("*.txt")}
        assert {"runtime.txt", "dev.txt", "tools.txt", "tools-checkov.txt"} <= names


@pytest.fixture(scope="module")
def oidc() -> dict[str, Any]:
    decoded, errors = decode(str(OIDC_TEMPLATE))
    assert errors == [], errors
    assert decoded is not None
    return dict(decoded)


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class TestOidcTemplate:
    def test_cfn_lint_is_clean(self) -> None:
        result = subprocess.run(
            [str(BIN / "cfn-lint"), str(OIDC_TEMPLATE)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_checkov_skips_are_justified(self, oidc: dict[str, Any]) -> None:
        for name, resource in oidc["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(skip.get("comment", "")) > 80, f"{name} {skip['id']}"

    def test_only_the_repositorys_environment_can_assume_the_deploy_role(
        self, oidc: dict[str, Any], workflows: dict[str, dict[str, Any]]
    ) -> None:
        (trust,) = oidc["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"][
            "Statement"
        ]
        assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
        equals = trust["Condition"]["StringEquals"]
        assert equals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
        assert equals["token.actions.githubusercontent.com:sub"] == {
            "Fn::Sub": "repo:${GitHubRepository}:environment:${GitHubEnvironment}"
        }
        allowed = set(oidc["Parameters"]["GitHubEnvironment"]["AllowedValues"])
        used = {job["environment"]["name"] for job in workflows["deploy.yml"]["jobs"].values()}
        assert allowed == used

    def test_the_deploy_role_changes_the_stack_only_through_cloudformation(
        self, oidc: dict[str, Any]
    ) -> None:
        deploy = statements(oidc["Resources"]["DeployRole"])
        actions = {a for s in deploy for a in as_list(s["Action"])}
        # It creates nothing itself: no service's create/put beyond the artifact bucket.
        services = {a.split(":")[0] for a in actions}
        assert services == {"cloudformation", "iam", "s3", "lambda"}
        assert {a for a in actions if a.startswith("iam:")} == {"iam:PassRole"}
        assert {a for a in actions if a.startswith("lambda:")} == {
            "lambda:InvokeFunction",
            "lambda:GetFunctionConfiguration",
            "lambda:GetFunctionConcurrency",
            "lambda:GetAccountSettings",
        }
        (pass_role,) = [s for s in deploy if s["Action"] == "iam:PassRole"]
        assert pass_role["Resource"] == {"Fn::GetAtt": ["CloudFormationRole", "Arn"]}
        assert pass_role["Condition"]["StringEquals"]["iam:PassedToService"] == (
            "cloudformation.amazonaws.com"
        )
        (own_stack,) = [
            s for s in deploy if s.get("Sid") == "ChangeSetsThroughTheCloudFormationRole"
        ]
        assert own_stack["Condition"]["StringEquals"]["cloudformation:RoleArn"] == {
            "Fn::GetAtt": ["CloudFormationRole", "Arn"]
        }
        for statement in deploy:
            if statement["Resource"] == "*":
                assert all(
                    a.split(":")[1].startswith(("Get", "Validate", "Describe", "List"))
                    for a in as_list(statement["Action"])
                ), statement

    def test_only_cloudformation_uses_the_cloudformation_role(self, oidc: dict[str, Any]) -> None:
        role = oidc["Resources"]["CloudFormationRole"]["Properties"]
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "cloudformation.amazonaws.com"}
        assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}

    def test_the_cloudformation_roles_wildcards_are_bounded(self, oidc: dict[str, Any]) -> None:
        """A "*" resource is held by a condition, or by actions that take no resource."""
        unconditioned = {"ListEventSourceMappings", "StatusPageDistribution"}
        for statement in statements(oidc["Resources"]["CloudFormationRole"]):
            actions = as_list(statement["Action"])
            assert "*" not in actions
            assert not any(a.endswith(":*") for a in actions)
            if statement["Resource"] == "*":
                assert "Condition" in statement or statement["Sid"] in unconditioned, statement
            else:
                for resource in as_list(statement["Resource"]):
                    text = str(resource)
                    scoped = ("${StackName}", "${Prefix}", "${SitesPath}", "apigateway")
                    assert any(part in text for part in scoped), (statement["Sid"], text)
