"""The entry point: parses the command line, picks GUI or headless mode, runs the one loop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from app import __version__
from app.core.errors import StartupError
from app.core.instance import RESTART as RESTART
from app.core.instance import SWITCH, DataDirInUse
from app.core.logs import setup_logging
from app.core.settings import (
    ALL_INTERFACES,
    DEFAULT_NODE_HOST,
    DEFAULT_NODE_PORT,
    DEFAULT_PORT,
    Settings,
)
from app.headless import node, run_headless, serve

log = logging.getLogger("llmlb")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; help texts come from the settings' declarations."""
    parser = argparse.ArgumentParser(
        prog="llmlb", description="One OpenAI-compatible endpoint for the LLMs on your machines."
    )
    parser.add_argument("--version", action="version", version=f"llmlb {__version__}")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="start the embedded server, check it, render the window offscreen, print ok",
    )
    parser.add_argument(
        "--connect",
        metavar="URL",
        default=None,
        help="open the window on the balancer at URL (another machine's `llmlb serve`) "
        "instead of starting one here",
    )
    parser.add_argument(
        "--token",
        help="with --connect: that balancer's admin token (kept in the OS keyring, so the "
        "next --connect URL needs none)",
    )
    parser.add_argument(
        "--fingerprint",
        metavar="HEX",
        help="with --connect https://…: the sha256 `llmlb serve --tls` prints (kept too)",
    )
    _common(parser)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the balancer headless (no GUI)")
    serve.add_argument("--host", default=None, help=Settings.cli_help("host"))
    serve.add_argument("--tls", action="store_true", default=None, help=Settings.cli_help("tls"))
    _common(serve)
    serve.add_argument("--no-local-node", action="store_true", help="do not run a local node")
    node = sub.add_parser("node", help="run a node alone, for another machine on the LAN")
    node.add_argument(
        "--balancer",
        default=None,
        help="the balancer's URL (found on the LAN by mDNS when omitted)",
    )
    node.add_argument(
        "--join-token",
        default=None,
        help=Settings.cli_help("join_token"),
    )
    node.add_argument(
        "--balancer-fingerprint",
        default=None,
        metavar="HEX",
        help=Settings.cli_help("balancer_fingerprint"),
    )
    node.add_argument(
        "--host",
        default=DEFAULT_NODE_HOST,
        help=f"address the node listens on (default {DEFAULT_NODE_HOST})",
    )
    node.add_argument("--name", default=None, help="the name shown in the app (default: hostname)")
    _common(node, "port the node listens on", DEFAULT_NODE_PORT)
    doctor = sub.add_parser("doctor", help="the llama.cpp backend, devices, memory, offload plans")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    _common(doctor)
    return parser


def _common(
    parser: argparse.ArgumentParser, port_help: str = "", port_default: int = DEFAULT_PORT
) -> None:
    port_help = port_help or Settings.help("port")
    parser.add_argument(
        "--port", type=int, default=None, help=f"{port_help} (default {port_default})"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help=Settings.cli_help("data_dir"))


def main(argv: list[str] | None = None) -> int:
    """Run llmlb; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is not None and args.connect is not None:
        parser.error("--connect opens the window on a server; it goes with no command")
    if (args.token or args.fingerprint) and args.connect is None:
        parser.error("--token and --fingerprint go with --connect URL")
    try:
        if args.self_test:
            from app.self_test import self_test

            return self_test()
        settings = Settings.from_env(
            host=getattr(args, "host", None),
            port=args.port,
            data_dir=args.data_dir,
            local_node=False if getattr(args, "no_local_node", False) else None,
            tls=getattr(args, "tls", None),
            balancer_fingerprint=getattr(args, "balancer_fingerprint", None),
            join_token=getattr(args, "join_token", None),
        )
        if args.command == "serve":
            return run_headless(serve(settings))
        if args.command == "node":
            return run_headless(node(args, settings))
        if args.command == "doctor":
            from app.doctor import run  # loads llama.cpp: only this command needs it here

            return run(settings, args.json)
        if args.command is None:
            if args.connect is not None and not _has_display():
                raise StartupError("--connect opens a window, and no display was found")
            if not _has_display():
                print(
                    "llmlb: no display found; serving headless (as `llmlb serve`)", file=sys.stderr
                )
                return run_headless(serve(settings))
            return _run_gui(args)
    except StartupError as exc:
        print(f"llmlb: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 2


def _has_display() -> bool:
    """Whether a window can be shown (Linux needs X11 or Wayland, or an explicit Qt platform)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def _run_gui(args: argparse.Namespace) -> int:
    """The desktop app: Qt and the balancer share one qasync loop."""
    from app.core.desktop_config import DesktopConfig
    from app.ui.instance import hand_over_to_running, hand_over_to_window_on

    config = DesktopConfig.load()
    # The saved server, unless this launch asks for a local balancer by its port or folder.
    server = args.connect or ("" if args.port or args.data_dir else config.server_url)
    settings = Settings.from_env(
        host=ALL_INTERFACES if config.serve_lan else None,
        port=args.port or config.port,
        data_dir=args.data_dir or (Path(config.data_dir) if config.data_dir else None),
        idle_unload_ttl=config.idle_unload_ttl,
    )
    # One window per data folder (or server): a later launch shows it and leaves, before it
    # pays for a QApplication and the window's modules (bench/ui.py times it).
    if hand_over_to_window_on(server) if server else hand_over_to_running(settings.data_dir):
        return 0
    import qasync
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from app.core.paths import resource_root
    from app.ui.i18n import set_language

    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("llmlb")  # X11's WM_CLASS: llmlb.desktop's StartupWMClass
    app.setDesktopFileName("llmlb")  # Wayland's app id: the desktop entry's icon and name
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(QIcon(str(resource_root() / "resources" / "icon.png")))
    set_language(config.language)  # before any message box: "cannot connect" is read too
    if server:
        from app.ui.app_run import run_remote

        given = (args.token, args.fingerprint)
        return _after_gui(run_remote(app, server, given, config, settings.data_dir))
    return _after_gui(int(qasync.run(_gui_main(app, settings, config))))


def restart_command(drop_connect: bool = False) -> list[str]:
    """The command line this process was started with: what "Restart now" runs again
    (without --connect/--token when the user chose another server in Settings)."""
    if getattr(sys, "frozen", False):  # the bundle: the program itself
        command = [sys.executable, *sys.argv[1:]]
    else:
        command = [sys.executable, *sys.orig_argv[1:]]
    if not drop_connect:
        return command
    kept: list[str] = []
    skip = False
    for arg in command:
        if skip:
            skip = False
        elif arg in ("--connect", "--token"):
            skip = True  # and its value
        elif not arg.startswith(("--connect=", "--token=")):
            kept.append(arg)
    return kept


def _after_gui(code: int) -> int:
    """The GUI has stopped cleanly: exit, or run the same command line again."""
    if code not in (RESTART, SWITCH):
        return code
    command = restart_command(drop_connect=code == SWITCH)
    log.info("restarting: %s", command)
    sys.stdout.flush()
    sys.stderr.flush()
    if sys.platform == "win32":  # pragma: no cover - no exec there: a new process, then exit
        import subprocess

        subprocess.Popen(command)
        return 0
    os.execv(command[0], command)
    return 0  # only reached where execv is replaced (tests)


async def _gui_main(app: object, settings: Settings, config: object) -> int:
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.context import AppContext
    from app.core.desktop_config import DesktopConfig
    from app.ui.app_run import folder_in_use, run_window
    from app.ui.desktop import Desktop
    from app.ui.i18n import tr

    assert isinstance(app, QApplication) and isinstance(config, DesktopConfig)
    setup_logging(None)
    ctx = AppContext(settings)
    try:
        await ctx.start()
    except StartupError as exc:
        if isinstance(exc, DataDirInUse):  # another window, or a headless serve, holds it
            code = await folder_in_use(app, settings.data_dir, config)
            if code is not None:
                return code
        print(f"llmlb: {exc}", file=sys.stderr)
        QMessageBox.critical(None, tr("llmlb cannot start"), str(exc))
        return 2
    setup_logging(settings.data_dir.expanduser().resolve())
    shutdown = asyncio.Event()
    desktop = Desktop(
        app,
        ctx.base_url,
        ctx.admin_token,
        config,
        str(settings.data_dir),
        shutdown.set,
        tls_fingerprint=ctx.tls_fingerprint,
    )
    code = await run_window(
        app, desktop, shutdown, f"llmlb {__version__}: OpenAI endpoint {ctx.base_url}/v1"
    )
    try:
        async with asyncio.timeout(5.0):
            await ctx.stop()
    except TimeoutError:
        log.warning("shutdown took longer than 5 s")
    return code


if __name__ == "__main__":
    sys.exit(main())
