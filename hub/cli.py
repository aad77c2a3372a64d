"""`tuneship space` and `tuneship push`."""

from __future__ import annotations

import argparse


def run_space(args: argparse.Namespace) -> int:
    from .space import write_space

    output = write_space(args.bundle, args.output, args.title, args.overwrite)
    print(f"wrote {output}: app.py, requirements.txt, README.md (Space header), bundle/")
    print(f"try it:  cd {output} && python -m venv .venv && .venv/bin/pip install -r requirements.txt "
          "&& .venv/bin/python app.py")
    print(f"publish: upload the folder to a Space (sdk gradio), e.g. `hf upload --repo-type space NAME {output}`")
    return 0


def run_push(args: argparse.Namespace) -> int:
    from .push import plan_push, push

    kind, folder = ("model", args.model) if args.model else ("bundle", args.bundle)
    plan = plan_push(folder, args.repo_id, kind, args.private, args.license, args.include_data, args.base_model)
    if not args.private:
        print(f"note: {args.repo_id} will be a PUBLIC repository: anyone can download what is listed below "
              "(pass --private to keep it to yourself and those you invite)")
    if kind == "bundle" and not args.base_model:
        print("note: the bundle's card names no base model; pass --base-model OWNER/NAME (its checkpoint's repo) to "
              "link it on the Hub as a quantized version of that checkpoint")
    if plan.left_out:
        print(f"left out, as your own data: {', '.join(plan.left_out)} (--include-data publishes them)")
    sizes = plan.sizes()
    print(f"{'would upload' if args.dry_run else 'uploading'} {len(sizes)} files "
          f"({sum(sizes.values()) / 1e6:.1f} MB) from {folder} to {'private ' if args.private else ''}repo {args.repo_id}:")
    for name, size in sizes.items():
        print(f"  {name:40s} {size / 1e6:9.2f} MB")
    if args.dry_run:
        return 0
    print(f"published: {push(plan).url}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    space = subparsers.add_parser("space", help="write a Hugging Face Space folder that serves a bundle with Gradio",
                                  description="Write a folder ready to push as a Hugging Face Space: app.py (the "
                                  "Gradio demo), requirements.txt (no torch), the bundle, and a README with the "
                                  "Space header.")
    space.add_argument("--bundle", required=True, metavar="DIR", help="bundle folder written by `tuneship export`")
    space.add_argument("--output", required=True, metavar="SPACE_DIR", help="folder to write")
    space.add_argument("--title", help="the Space's title (default: the bundle folder's name)")
    space.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    space.set_defaults(run=run_space)

    push = subparsers.add_parser("push", help="publish a checkpoint or a bundle to the Hugging Face Hub",
                                 description="Create the Hub repo (or reuse it) and upload the folder in one commit. "
                                 "The token comes from HF_TOKEN or `hf auth login`, and is never printed.")
    source = push.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="DIR", help="checkpoint folder written by `tuneship train`")
    source.add_argument("--bundle", metavar="DIR", help="bundle folder written by `tuneship export`")
    push.add_argument("--repo-id", required=True, metavar="NAME", help="NAME or OWNER/NAME on the Hub")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--license", help="license for the model card when it has none (e.g. apache-2.0)")
    push.add_argument("--base-model", metavar="REPO", help="a bundle's fine-tuned checkpoint on the Hub (OWNER/NAME): "
                      "the card names it as its base model, `base_model_relation: quantized`")
    push.add_argument("--dry-run", action="store_true", help="list what would be uploaded; send nothing")
    push.add_argument("--include-data", action="store_true",
                      help="also publish the checkpoint's rows of your data (validation.jsonl, calibration.jsonl) and "
                      "the Trainer's pickled training_args.bin, left out by default")
    push.set_defaults(run=run_push)
