"""`compress cache`: build a teacher cache (resumable, sharded, across torchrun ranks), finalize it, inspect it."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from compress.cache.presets import AUGMENTATIONS, DEFAULT_BATCH_SIZE, DEFAULT_SHARD_SIZE
from compress.console import make_console
from compress.errors import CompressError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "cache",
        help="precompute teacher embeddings once and reuse them in training",
        description="Teacher caches: teacher embeddings (and the augmentation of every view) "
        "stored in fp16 safetensors shards with a JSON index.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    build = actions.add_parser(
        "build",
        help="embed a dataset with a teacher into a cache folder (rerun to resume after a kill)",
        description="Embed every sample of --data with --teacher. Completed shards are kept, so rerunning the same "
        "command after an interruption resumes. Under torchrun each rank builds shards rank, "
        "rank + world_size, ... and rank 0 writes the index.",
    )
    build.add_argument(
        "--teacher",
        required=True,
        metavar="SPEC",
        help="teacher spec: demo, demo:/folder, altclip:/folder, a mapping such as "
        '"{name: demo, steps: 50}" or "{image: open-clip:/clip, text: mclip:/mclip}" (YAML or JSON)',
    )
    build.add_argument(
        "--data",
        required=True,
        metavar="SPEC",
        help="data spec: demo:train, a .jsonl manifest (manifest:FILE), tar shards (shards:PATTERN), "
        'or a mapping such as "{name: demo, location: train, size: 1000}" (YAML or JSON)',
    )
    build.add_argument("--out", required=True, help="the cache folder")
    build.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help=f"default {DEFAULT_BATCH_SIZE}")
    build.add_argument(
        "--shard-size",
        type=int,
        default=DEFAULT_SHARD_SIZE,
        help=f"samples per shard, the unit of resuming (default {DEFAULT_SHARD_SIZE})",
    )
    build.add_argument(
        "--augment", default="none", choices=list(AUGMENTATIONS), help="augmentation of the stored views (default none)"
    )
    build.add_argument("--views", type=int, help="augmented views per image (default 1 for none, else 4)")
    build.add_argument("--seed", type=int, default=0, help="seed of the view parameters (default 0)")
    build.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    build.add_argument("--device", help="teacher device (cpu, cuda); under torchrun cuda means cuda:LOCAL_RANK")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.set_defaults(run=run_build)

    finalize = actions.add_parser("finalize", help="write the index once every rank's shards are present")
    finalize.add_argument("out", help="the cache folder")
    finalize.set_defaults(run=run_finalize)

    info = actions.add_parser("info", help="describe a cache folder")
    info.add_argument("out", help="the cache folder")
    info.set_defaults(run=run_info)


def teacher_spec(text: str, device: str | None, local_rank: int):
    """The --teacher spec (`compress.specs` grammar), with --device added to each teacher's options
    (cuda becomes cuda:LOCAL_RANK); a composed spec gets it on every part."""
    from compress.specs import parse_text, with_options

    spec = parse_text(text, "--teacher")
    if device is None:
        return spec
    if device == "cuda":
        device = f"cuda:{local_rank}"
    return with_options(spec, device=device)


def run_build(args) -> int:
    from compress.api import load_teacher, open_data
    from compress.cache.build import build_cache, rank_from_env
    from compress.specs import parse_text

    for option in ("batch_size", "shard_size"):
        if getattr(args, option) < 1:
            raise CompressError(f"--{option.replace('_', '-')} must be at least 1")
    if args.workers < 0:
        raise CompressError("--workers cannot be negative")
    info = rank_from_env()
    console = Console(stderr=True)
    dataset = open_data(parse_text(args.data, "--data"))
    teacher = load_teacher(teacher_spec(args.teacher, args.device, info.local_rank))
    result = build_cache(
        teacher,
        dataset,
        args.out,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        augmentation=args.augment,
        views=args.views,
        seed=args.seed,
        num_workers=args.workers,
        progress=not args.no_progress,
        console=console,
    )
    where = f" (rank {result.rank}/{result.world_size})" if result.world_size > 1 else ""
    table = Table(title=f"teacher cache {args.out}{where}")
    for column in ("shards built", "shards kept", "samples", "views", "skipped", "seconds", "samples/s"):
        table.add_column(column, justify="right")
    table.add_row(
        str(len(result.shards_built)),
        str(len(result.shards_kept)),
        str(result.samples),
        str(result.views),
        str(result.skipped),
        f"{result.seconds:.1f}",
        f"{result.samples_per_s:.1f}",
    )
    make_console().print(table)
    if result.complete:
        print(f"complete: {Path(args.out) / 'cache.json'}")
    else:
        print(
            f"rank {result.rank} done; waiting for {len(result.waiting_for)} shard(s) from other ranks "
            f"(then: compress cache finalize {args.out})"
        )
    return 0


def run_finalize(args) -> int:
    from compress.cache.build import finalize_cache

    index = finalize_cache(args.out)
    print(f"complete: {Path(args.out) / 'cache.json'} ({index['samples']} samples in {len(index['shards'])} shards)")
    return 0


def run_info(args) -> int:
    from compress.cache.store import TeacherCache

    cache = TeacherCache(args.out)
    index = cache.index
    table = Table(title=f"teacher cache {cache.folder}", show_header=False)
    towers = "+".join(t for t in ("image", "text") if index["teacher"][t])
    rows = [
        ("teacher", index["teacher"]["fingerprint"]),
        ("towers, width", f"{towers}, {cache.embed_dim}"),
        ("dataset digest", f"{cache.dataset_digest} ({cache.dataset_size} samples)"),
        ("samples", f"{len(cache)} cached, {index['skipped']['count']} skipped by the data source"),
        ("augmentation", cache.augmentation.describe()),
        ("shards", f"{len(index['shards'])} of up to {index['shard_size']} samples, {index['dtype']}"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    make_console().print(table)
    return 0
