"""`compress search`: hardware-aware search for the student's image and text towers."""

from __future__ import annotations

from compress.errors import CompressError

DEFAULT_OUT = "runs/search"


def add_parser(sub) -> None:
    from compress.search.pareto import PICK_RULES, RANK_BY
    from compress.search.settings import DEFAULT_REPEATS, DEFAULT_WARMUP, ProxySettings

    proxy = ProxySettings()
    p = sub.add_parser(
        "search",
        help="search student towers under latency and size budgets (ExecuTorch XNNPACK)",
        description=(
            "Measure every candidate of the image and text search spaces as an ExecuTorch XNNPACK program "
            "(latency here, or from a phone's per-operator latency table), drop those over budget, rank the rest "
            "with a short distillation proxy against the teacher, pair image and text towers under the size budget "
            "and write the Pareto front (search.json, search.png) and the chosen student (chosen_student.yaml)."
        ),
    )
    p.add_argument("--image-latency-ms", type=float, help="latency limit of the image tower, batch 1 (ms)")
    p.add_argument("--text-latency-ms", type=float, help="latency limit of the text tower, batch 1 (ms)")
    p.add_argument("--size-mb", type=float, help="limit on both .pte files together (MB, fp32)")
    p.add_argument("--space-image", metavar="FILE", help="image search space YAML (default: students/spaces/image.yaml)")
    p.add_argument("--space-text", metavar="FILE", help="text search space YAML (default: students/spaces/text.yaml)")
    p.add_argument("--latency-lut", metavar="FILE", help="per-operator latency table (JSON) measured on a phone")
    p.add_argument(
        "--lut-unknown",
        choices=("error", "zero"),
        default="error",
        help="an operator missing from the table: error (default) or count it as 0 ms",
    )
    p.add_argument(
        "--write-lut-template",
        metavar="FILE",
        help="write a latency-table template with every operator of the spaces' towers, then stop",
    )
    p.add_argument("--lut-device", default="", help="device name written into the template")
    p.add_argument(
        "--teacher", default="demo", help="teacher spec for the proxy runs, e.g. '{image: a, text: b}' (default: demo)"
    )
    p.add_argument("--proxy-steps", type=int, default=proxy.steps, help=f"training steps per candidate (default {proxy.steps})")
    p.add_argument("--proxy-batch-size", type=int, default=proxy.batch_size)
    p.add_argument("--proxy-train-samples", type=int, default=proxy.train_samples, help="demo training samples")
    p.add_argument("--proxy-val-samples", type=int, default=proxy.val_samples, help="demo validation samples")
    p.add_argument("--proxy-zero-shot-count", type=int, default=proxy.zero_shot_count, help="test images per demo task")
    p.add_argument("--rank-by", choices=RANK_BY, default="val_loss", help="proxy quality (default: val_loss)")
    p.add_argument(
        "--pick",
        choices=PICK_RULES,
        default="best",
        help="which member of the front to write as the student (default: best proxy quality)",
    )
    p.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="untimed runs before timing")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="timed runs; the median is the latency")
    p.add_argument("--refresh", action="store_true", help="measure and train again instead of reading the caches")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    p.set_defaults(run=run)


def run(args) -> int:
    import compress
    from compress.search import (
        Budgets,
        LatencyCache,
        LatencyTable,
        ProxyCache,
        ProxySettings,
        default_space_path,
        load_space,
        run_search,
        write_space_lut_template,
    )
    from compress.specs import parse_text

    image_space = load_space(args.space_image or default_space_path("image"), family="image")
    text_space = load_space(args.space_text or default_space_path("text"), family="text")
    latency_cache = LatencyCache()
    if args.write_lut_template:
        write_space_lut_template(args.write_lut_template, [image_space, text_space], latency_cache, device=args.lut_device)
        return 0
    if args.warmup < 0 or args.repeats < 1:
        raise CompressError(f"--warmup must be >= 0 and --repeats >= 1, got {args.warmup} and {args.repeats}")
    budgets = Budgets(args.image_latency_ms, args.text_latency_ms, args.size_mb)
    lut = LatencyTable.load(args.latency_lut) if args.latency_lut else None
    proxy = ProxySettings(
        steps=args.proxy_steps,
        batch_size=args.proxy_batch_size,
        train_samples=args.proxy_train_samples,
        val_samples=args.proxy_val_samples,
        zero_shot_count=args.proxy_zero_shot_count,
    )
    teacher_spec = parse_text(args.teacher, "--teacher")
    run_search(
        budgets,
        image_space,
        text_space,
        lambda: compress.load_teacher(teacher_spec),
        args.out,
        proxy=proxy,
        lut=lut,
        lut_unknown=args.lut_unknown,
        rank_by=args.rank_by,
        pick_rule=args.pick,
        warmup=args.warmup,
        repeats=args.repeats,
        latency_cache=latency_cache,
        proxy_cache=ProxyCache(),
        refresh=args.refresh,
    )
    return 0
