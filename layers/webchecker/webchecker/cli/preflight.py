"""`webchecker preflight`: what `make deploy` checks before building and deploying.

Refuses (exit status 2) an environment of samconfig.toml that cannot deploy: placeholders
left, unknown parameters, values the template refuses, missing combinations, no region,
and (with credentials) too little Lambda concurrency for CheckerReservedConcurrency.
Every problem is printed, each naming the value.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from webchecker.provision.preflight import (
    account_concurrency_problem,
    load_config,
    offline_problems,
    region_problem,
    template_parameters,
)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "preflight",
        help="check a samconfig.toml environment before deploying (make deploy runs it)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("--config-env", default="default", help="environment (default: default)")
    parser.add_argument("--config", type=Path, default=Path("samconfig.toml"))
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--region", default=None, help="the region sam deploy will be given")
    parser.add_argument(
        "--offline", action="store_true", help="skip the checks that call AWS (concurrency)"
    )
    parser.set_defaults(handler=_preflight)


def _preflight(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.config_env)
    root = args.template.resolve().parent
    problems = offline_problems(config, template_parameters(args.template), root=root)
    region = region_problem(config, args.region)
    if region:
        problems.append(region)
    if not problems and not args.offline:
        quota = account_concurrency_problem(config, region=args.region)
        if quota:
            problems.append(f"[{config.environment}] {quota}")
    for problem in problems:
        print(f"webchecker preflight: {problem}", file=sys.stderr)
    if problems:
        print(
            f"webchecker preflight: {len(problems)} problem(s) in {args.config} "
            f"[{args.config_env}]; nothing was built or deployed",
            file=sys.stderr,
        )
        return 2
    print(f"preflight: {args.config} [{args.config_env}] is ready to deploy")
    return 0
