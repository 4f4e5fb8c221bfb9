"""Command line of the local platform: up, status, stop, restart, logs, env."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from scripts.platform import config
from scripts.platform.parts.apps import App
from scripts.platform.parts.base import PartError, PartStatus, log_tail
from scripts.platform.stack import Stack


def _table(statuses: list[PartStatus]) -> str:
    alive = {"ours": "yes", "shared": "shared", "down": "no", "skipped": "-"}
    rows = [("PART", "PID", "ALIVE", "PORTS", "HEALTH")]
    for status in statuses:
        mark = "ok" if status.ok else "FAIL"
        rows.append((status.name, str(status.pid or "-"), alive[status.origin], status.ports,
                     f"{mark}  {status.health}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in rows)


def _say(line: str) -> None:
    try:
        print(line, flush=True)
    except BrokenPipeError:  # `up | head`: finish the work anyway, quietly
        sys.stdout = open(os.devnull, "w")


def cmd_up(stack: Stack, args: argparse.Namespace) -> int:
    try:
        stack.up(_say)
    except PartError as exc:
        print(f"\nup failed: {exc}\n(parts already started keep running: `stop` ends them)", file=sys.stderr)
        return 1
    return cmd_status(stack, args)


def cmd_status(stack: Stack, args: argparse.Namespace) -> int:
    statuses = stack.status()
    print(_table(statuses))
    print(f"logs: {stack.cfg.log_dir}   data: {stack.cfg.data_dir}")
    return 0 if all(status.ok for status in statuses) else 1


def cmd_stop(stack: Stack, args: argparse.Namespace) -> int:
    stack.stop(_say, args.parts)
    return 0


def cmd_restart(stack: Stack, args: argparse.Namespace) -> int:
    stack.stop(_say, args.parts)
    return cmd_up(stack, args)


def cmd_logs(stack: Stack, args: argparse.Namespace) -> int:
    names = [part.name for part in stack.select(args.parts)]
    paths = [stack.ctx.sup.log_path(name) for name in names]
    paths = [path for path in paths if path.exists()] if not args.parts else paths
    if args.follow:
        os.execvp("tail", ["tail", "-n", str(args.lines), "-F", *map(str, paths)])
    for path in paths:
        if len(paths) > 1:
            print(f"==> {path} <==")
        sys.stdout.write(log_tail(path, args.lines))
    return 0


def cmd_env(stack: Stack, args: argparse.Namespace) -> int:
    """The environment an app gets, to run it by hand: eval "$(scripts/platformctl env messaging)"."""
    part = stack.select([args.app])[0]
    if not isinstance(part, App):
        raise PartError(f"{args.app} is not an app")
    for key, value in sorted(part.environment().items()):
        print(f"export {key}={shlex.quote(value)}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="scripts/platformctl", description=__doc__)
    top.add_argument("--config", help=f"settings file (default ${config.CONFIG_ENV} or {config.DEFAULT_CONFIG.name})")
    top.add_argument("--var", help=f"pid files, logs and data (default ${config.VAR_ENV} or var/ in the repo)")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start every part that is not running and wait until all are healthy")
    sub.add_parser("status", help="pid, liveness and a real health probe of every part; exit 1 if any fails")
    for name, text in (("stop", "stop parts (default all) in reverse start order"),
                       ("restart", "stop parts (default all), then `up`")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("parts", nargs="*")
    logs = sub.add_parser("logs", help="show the end of logs (default all)")
    logs.add_argument("parts", nargs="*")
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.add_argument("-f", "--follow", action="store_true")
    env = sub.add_parser("env", help="print the environment of an app as shell exports")
    env.add_argument("app")
    return top


COMMANDS = {"up": cmd_up, "status": cmd_status, "stop": cmd_stop, "restart": cmd_restart,
            "logs": cmd_logs, "env": cmd_env}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        stack = Stack(config.load(args.config, args.var))
        return COMMANDS[args.command](stack, args)
    except (config.ConfigError, PartError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `logs | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
