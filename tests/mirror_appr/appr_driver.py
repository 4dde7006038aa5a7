"""Runs the stock appr 0.7.4 client's own commands (pull, show, list, version,
channel) with appr's own argument parser, under the appr venv's Python.

`appr`'s console script (appr.commands.cli) imports `gevent.wsgi` for `appr
run-server`, which gevent no longer has, so this builds the parser the way
appr.commands.cli.get_parser does, from the command classes it needs; each command
then runs exactly as `appr <command> ...` would.
Python 2/3-neutral on purpose: it runs in the appr venv, not in appshelf's.
"""

import argparse
import sys

from appr.commands.channel import ChannelCmd
from appr.commands.list_package import ListPackageCmd
from appr.commands.pull import PullCmd
from appr.commands.show import ShowCmd
from appr.commands.version import VersionCmd


def main(argv):
    commands = {c.name: c for c in (PullCmd, ShowCmd, ListPackageCmd, VersionCmd, ChannelCmd)}
    parser = argparse.ArgumentParser(prog="appr")
    subparsers = parser.add_subparsers(help="command help")
    for command in commands.values():
        command.add_parser(subparsers, None)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
