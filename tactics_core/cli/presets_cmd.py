"""`tactics presets ls | show NAME | cp NAME [DEST]`: see and copy training presets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tactics_core.common.workspace import PRESETS_DIR


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "presets",
        help="list, show and copy training presets",
        description="Training presets (TOML): built-in ones, and your own in the workspace's "
        "presets/ folder, which shadow built-ins of the same name.",
    )
    parser.add_argument(
        "--presets-dir", type=Path, default=PRESETS_DIR,
        help=f"the workspace's presets folder (default: {PRESETS_DIR})",
    )
    sub = parser.add_subparsers(dest="presets_command", metavar="ACTION")

    ls = sub.add_parser("ls", help="list presets (name, built-in or workspace, description)")
    ls.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    ls.set_defaults(func=cmd_ls)

    show = sub.add_parser("show", help="print a preset as TOML, every key resolved")
    show.add_argument("name", metavar="NAME", help="preset name or path to a .toml file")
    show.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="show the preset with this override applied (repeatable)",
    )
    show.set_defaults(func=cmd_show)

    cp = sub.add_parser("cp", help="copy a preset into the workspace's presets/ to edit it")
    cp.add_argument("name", metavar="NAME", help="preset to copy (usually a built-in)")
    cp.add_argument("dest", metavar="DEST", nargs="?", help="new name or .toml path (default: NAME)")
    cp.add_argument("--force", action="store_true", help="overwrite DEST if it exists")
    cp.set_defaults(func=cmd_cp)

    parser.set_defaults(func=lambda args: (parser.print_help(), 1)[1])


def cmd_ls(args: argparse.Namespace) -> int:
    from tactics_core.training.presets import list_presets

    infos = list_presets(args.presets_dir)
    if args.json:
        rows = [
            {
                "name": i.name, "path": str(i.path), "builtin": i.builtin, "shadows": i.shadows,
                "active": i.active, "description": i.description, "error": i.error,
            }
            for i in infos
        ]
        print(json.dumps(rows, indent=1))
        return 0
    width = max([len(i.name) for i in infos] + [4])
    print(f"{'NAME'.ljust(width)}  {'WHERE'.ljust(9)}  DESCRIPTION")
    for i in infos:
        where = "built-in" if i.builtin else "workspace"
        if i.error:
            text = f"(does not load: {i.error})"
        else:
            text = i.description or "-"
            if i.shadows:
                text += "  [shadows the built-in]"
            if not i.active:
                text += f"  [shadowed by {Path(args.presets_dir) / (i.name + '.toml')}]"
        print(f"{i.name.ljust(width)}  {where.ljust(9)}  {text}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from tactics_core.training.presets import apply_overrides, dumps_preset, load_preset

    preset = apply_overrides(load_preset(args.name, args.presets_dir), args.overrides)
    where = "built-in" if preset.builtin else "workspace"
    print(f"# preset {preset.name} ({where}: {preset.source})")
    print(dumps_preset(preset), end="")
    return 0


def cmd_cp(args: argparse.Namespace) -> int:
    from tactics_core.training.presets import copy_builtin

    target = copy_builtin(args.name, args.presets_dir, force=args.force, dest=args.dest)
    in_dir = target.parent.resolve() == Path(args.presets_dir).resolve()
    ref = target.stem if in_dir else str(target)
    print(f"copied {args.name} to {target}; edit it, then `tactics train --preset {ref}`")
    return 0
