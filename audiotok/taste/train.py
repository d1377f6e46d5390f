"""The taste-train loop: aggregator (+ RVQ) + fusion + decoder, trained to predict S3 units.

State lives in OUTPUT_DIR:
  checkpoints/step-NNNNNNN.pt     model, optimiser, schedule, RNG states, step
  model.safetensors, config.json  the latest weights and everything taste-encode needs
                                  (the resolved config, the feature store's meta, the
                                  training units' rate and where it came from)
  train_config.yaml               the resolved config
  baselines.json                  majority-class and copy-previous-unit accuracy, fitted once
  metrics.jsonl                   training lines (loss, batch accuracy) and evaluation lines
                                  (loss, accuracy, top-k accuracy on train and valid)
  loss_curve.png                  loss and accuracy by step, with the baselines
  examples.txt, summary.json      at the end: true vs predicted units; final numbers
A run finding a checkpoint resumes from it. Batches are a function of the step and
the CPU kernels are deterministic, so a stopped and resumed run writes the same
metrics as one that was never stopped.

Under torchrun (DDP, one machine or several) each process takes a contiguous share of
every global batch; each process's loss is its part of the global batch's (a share counts
by the targets it holds) and the gradients are summed over the processes, the RVQ codebooks follow the whole global batch (rvq.py), and only
rank 0 evaluates and writes files. Without dropout the processes together train what one
process trains over the same batches (up to rounding: the shares pad to other lengths).
"""

import json
import logging
import time
from pathlib import Path

import torch

from audiotok.distributed import Distributed, check_batch_split
from audiotok.errors import AudiotokError
from audiotok.training import batch_order, lr_factor, resume_from_checkpoint, save_figure, truncate_metrics, write_checkpoint

log = logging.getLogger("audiotok")
FORMAT = "audiotok-taste-1"


def evaluate(model, corpus, indices: list[int], config: dict, device, zero_speech: bool = False) -> dict:
    """Teacher-forced loss (units and EOS), accuracy and top-k accuracy (units only) over `indices`."""
    from audiotok.taste.data import collate
    from audiotok.taste.model import IGNORE, unit_scores

    was_training = model.training
    model.eval()
    size, dtype = config["optim"]["batch_size"], getattr(torch, config["optim"]["dtype"])
    loss_sum, loss_count, counts = 0.0, 0, {"correct": 0, "top_k": 0, "total": 0}
    codes = []
    with torch.no_grad():
        for start in range(0, len(indices), size):
            batch = collate([corpus.item(i) for i in indices[start : start + size]]).to(device, dtype)
            out = model(batch, zero_speech=zero_speech)
            if out["codes"] is not None:
                codes.append(out["codes"][batch.text_mask].cpu())
            real = int((out["targets"] != IGNORE).sum())
            loss_sum += float(out["ce"]) * real
            loss_count += real
            for key, value in unit_scores(out["logits"], out["targets"], model.eos, config["top_k"]).items():
                counts[key] += value
    model.train(was_training)
    scores = {
        "loss": loss_sum / loss_count,
        "accuracy": counts["correct"] / counts["total"],
        f"top{config['top_k']}_accuracy": counts["top_k"] / counts["total"],
    }
    if codes:
        scores.update(code_usage(torch.cat(codes), config["rvq"]["size"]))
    return scores


def code_usage(codes: torch.Tensor, size: int) -> dict:
    """Per codebook: codes in use and the perplexity of their distribution (size: all used evenly)."""
    used, perplexity = [], []
    for column in codes.t():
        p = torch.bincount(column, minlength=size).double() / len(column)
        used.append(int((p > 0).sum()))
        perplexity.append(round(float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum())), 2))
    return {"codes_used": used, "code_perplexity": perplexity}


def load_weights(model, state: dict, where) -> None:
    """Load a saved state; only a frozen LM's own weights may be absent (they come from its directory)."""
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("decoder.backbone.")]
    if missing or result.unexpected_keys:
        names = (missing or result.unexpected_keys)[:3]
        raise AudiotokError(
            f"{where} does not fit this model ({'missing' if missing else 'unexpected'} {', '.join(names)})",
            "train again with the config that made it, or another --output-dir",
        )


def save_model_dir(output: Path, model, config: dict, features_meta: dict, extra: dict) -> None:
    from safetensors.torch import save_file

    from audiotok.io.atomic import atomic_write_text, tmp_path_for
    from audiotok.taste.model import trainable_state

    weights = output / "model.safetensors"
    tmp = tmp_path_for(weights)
    save_file({k: v.detach().float().contiguous().cpu() for k, v in trainable_state(model).items()}, str(tmp))
    tmp.replace(weights)
    meta = {"format": FORMAT, "model": model.config, "config": config, "features": features_meta, **extra}
    atomic_write_text(output / "config.json", json.dumps(meta, indent=2) + "\n")


def _save_checkpoint(output: Path, step: int, model, optimizer, scheduler, config: dict, features_meta: dict, units_meta: dict) -> None:
    from audiotok.taste.model import trainable_state

    write_checkpoint(output, step, trainable_state(model), optimizer, scheduler, config["optim"]["keep_checkpoints"])
    save_model_dir(output, model, config, features_meta, {"trained_steps": step, "units": units_meta})


def plot_curve(metrics_path: Path, baselines: dict, png: Path, top_k: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for field, style, label in (("loss", "-", "train loss (batch)"), ("train_loss", "o-", "train loss (eval)"), ("valid_loss", "s-", "valid loss")):
        points = [(r["step"], r[field]) for r in rows if field in r]
        if points:
            loss_axis.plot(*zip(*points), style, label=label)
    for field, style, label in (
        ("train_accuracy", "o-", "train"),
        (f"train_top{top_k}_accuracy", "o:", f"train top-{top_k}"),
        ("valid_accuracy", "s-", "valid"),
        (f"valid_top{top_k}_accuracy", "s:", f"valid top-{top_k}"),
    ):
        points = [(r["step"], r[field]) for r in rows if field in r]
        if points:
            accuracy_axis.plot(*zip(*points), style, label=label)
    for field, color, label in (("train_majority_accuracy", "gray", "majority (train)"), ("train_copy_previous_accuracy", "black", "copy-previous (train)")):
        if field in baselines:
            accuracy_axis.axhline(baselines[field], color=color, linestyle="--", label=label)
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("cross-entropy (S3 units + EOS)")
    loss_axis.set_yscale("log")
    accuracy_axis.set_xlabel("step")
    accuracy_axis.set_ylabel("S3 unit accuracy (teacher-forced)")
    accuracy_axis.set_ylim(0, 1)
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    save_figure(figure, png)


def _units_text(units, limit: int = 40) -> str:
    units = list(units)
    return " ".join(map(str, units[:limit])) + (f" ... (+{len(units) - limit})" if len(units) > limit else "")


def examples(model, corpus, count: int, device, dtype=torch.float32) -> str:
    """True vs predicted units for the first `count` items: teacher-forced (each unit predicted
    from the true ones before it) and greedy free-running (from the model's own units)."""
    from audiotok.taste.data import collate

    lines = []
    model.eval()
    with torch.no_grad():
        for index in range(min(count, len(corpus))):
            item = corpus.item(index)
            batch = collate([item]).to(device, dtype)
            out = model(batch)
            true = item.units.tolist()
            forced = out["logits"][0, : len(true)].argmax(-1).tolist()
            free = model.generate(batch, max_units=len(true) + 10)[0]
            forced_acc = sum(a == b for a, b in zip(true, forced)) / len(true)
            free_acc = sum(a == b for a, b in zip(true, free)) / len(true)
            lines += [
                f"{item.key}: {item.text}",
                f"  true           ({len(true)}): {_units_text(true)}",
                f"  teacher-forced ({forced_acc:.0%} right): {_units_text(forced)}",
                f"  free-running   ({len(free)} units, {free_acc:.0%} right in place): {_units_text(free)}",
            ]
    return "\n".join(lines) + "\n"


def global_losses(out: dict, batch, dist: Distributed) -> dict:
    """This process's part of the global batch's losses (the parts sum to them over the
    processes): cross-entropy and RVQ loss are means over unit targets and text tokens, and
    the shares hold different numbers of those, so each share counts by what it holds."""
    if dist.world == 1:
        return out
    from audiotok.taste.model import IGNORE

    held = torch.stack([(out["targets"] != IGNORE).sum(), batch.text_mask.sum()]).to(out["ce"].dtype)  # int / int would be float32
    units, texts = held / dist.sum(held)
    ce, quant_loss = out["ce"] * units, out["quant_loss"] * texts
    return {"ce": ce, "quant_loss": quant_loss, "loss": ce + quant_loss}


def train(config: dict, output: Path, device: str = "auto", stop_after: int | None = None) -> dict:
    """Train (or resume) into `output`, as one process or as one of torchrun's; returns the
    summary (final metrics and baselines) in rank 0, {} in the others."""
    if not config["data"]["train"]["features"]:
        raise AudiotokError(
            "no training data: data.train.features and data.train.units are not set", "set them in the config, or give --features STORE --units FILE"
        )
    check_batch_split(config["optim"]["batch_size"])
    dist = Distributed(device)
    try:
        return _train(config, output, dist, stop_after)
    finally:
        dist.close()


def _train(config: dict, output: Path, dist: Distributed, stop_after: int | None) -> dict:
    import contextlib

    import yaml

    from audiotok.io.atomic import atomic_write_text
    from audiotok.taste.data import UnitCorpus, baselines, collate
    from audiotok.taste.model import TasteModel, parameter_count, unit_scores

    d, o = config["data"], config["optim"]
    device, dtype = dist.device, getattr(torch, o["dtype"])
    output.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config["seed"])
    corpus = UnitCorpus(d["train"]["features"], d["train"]["units"], config, "train")
    valid = UnitCorpus(d["valid"]["features"], d["valid"]["units"], config, "valid") if d["valid"]["features"] else None
    if valid is not None and (valid.text_dim, valid.whisper_dim) != (corpus.text_dim, corpus.whisper_dim):
        raise AudiotokError(
            f"valid features are {valid.text_dim}/{valid.whisper_dim} wide, train features {corpus.text_dim}/{corpus.whisper_dim}",
            "make both with the same taste-extract options",
        )
    model = TasteModel(config, corpus.text_dim, corpus.whisper_dim).to(device, dtype)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=o["lr"], betas=tuple(o["betas"]), weight_decay=o["weight_decay"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, o))
    eval_train = list(range(min(d["eval_train_items"], len(corpus))))
    top = f"top{config['top_k']}_accuracy"

    reference: dict = {}
    if dist.main:
        reference = baselines(
            corpus.all_units(), {"train": [corpus.units[corpus.keys[i]] for i in eval_train], **({"valid": valid.all_units()} if valid else {})}
        )
        reference["train_items"], reference["eval_train_items"] = len(corpus), len(eval_train)
        reference["data"] = {"train": corpus.report, **({"valid": valid.report} if valid else {})}
        atomic_write_text(output / "baselines.json", json.dumps(reference, indent=2) + "\n")
        log.info(
            "baselines (no model): majority unit %d: train accuracy %.3f; copy-previous unit: train accuracy %.3f%s",
            reference["majority_unit"],
            reference["train_majority_accuracy"],
            reference["train_copy_previous_accuracy"],
            f"; valid majority {reference['valid_majority_accuracy']:.3f}, copy-previous {reference['valid_copy_previous_accuracy']:.3f}" if valid else "",
        )

    step = resume_from_checkpoint(output, device, lambda state, path: load_weights(model, state, path), optimizer, scheduler)
    if dist.rank > 0:
        # Rank 0 keeps the single-process RNG stream (its random codebook picks are the ones
        # broadcast); the others draw their own dropout masks instead of repeating rank 0's.
        torch.manual_seed(config["seed"] * 1_000_003 + step * 1009 + dist.rank)
    metrics_path = output / "metrics.jsonl"
    if dist.main:
        truncate_metrics(metrics_path, step)
        atomic_write_text(output / "train_config.yaml", yaml.safe_dump(config, sort_keys=False))
        log.info(
            "%d training items%s; %.2fM parameters (%.2fM trained) on %s%s",
            len(corpus),
            f", {len(valid)} valid" if valid else "",
            parameter_count(model) / 1e6,
            parameter_count(model, True) / 1e6,
            device,
            f" in each of {dist.world} processes" if dist.world > 1 else "",
        )

    features_meta = corpus.meta
    units_meta = {"rate": corpus.unit_rate, "rate_from": corpus.report["unit_rate_from"]}  # the targets' units a second
    use_bf16 = o["mixed_precision"] and device.type == "cuda"
    model.train()
    last: dict = {}
    started, started_step = time.time(), step
    with open(metrics_path, "a", encoding="utf-8") if dist.main else contextlib.nullcontext() as metrics:
        while step < o["max_steps"]:
            share = batch_order(step, len(corpus), o["batch_size"], config["seed"])[dist.share(o["batch_size"])]
            batch = collate([corpus.item(i) for i in share]).to(device, dtype)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                out = model(batch)
            losses = global_losses(out, batch, dist)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            dist.sum_gradients(trainable)
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, o["grad_clip"])
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            step += 1
            if step % o["log_every"] == 0 or step == o["max_steps"]:
                scores = unit_scores(out["logits"].detach(), out["targets"], model.eos, config["top_k"])
                loss, ce, quant_loss = dist.sum(torch.stack([losses["loss"], losses["ce"], losses["quant_loss"]]).detach().double()).tolist()
                correct, total = dist.sum(torch.tensor([scores["correct"], scores["total"]], device=device)).tolist()
                if dist.main:
                    last = {
                        "step": step,
                        "loss": loss,
                        "ce": ce,
                        "quant_loss": quant_loss,
                        "accuracy": correct / total,
                        "lr": lr,
                        "grad_norm": float(grad_norm),
                    }
                    metrics.write(json.dumps(last) + "\n")
                    metrics.flush()
                    rate = (time.time() - started) / (step - started_step)
                    log.info(
                        "step %d/%d loss %.4f (ce %.4f rvq %.4f) batch accuracy %.3f lr %.2e %.2f s/step",
                        step,
                        o["max_steps"],
                        last["loss"],
                        last["ce"],
                        last["quant_loss"],
                        last["accuracy"],
                        lr,
                        rate,
                    )
            if step % config["eval_every"] == 0 or step == o["max_steps"]:
                if dist.main:
                    row = {"step": step, **{f"train_{k}": v for k, v in evaluate(model, corpus, eval_train, config, device).items()}}
                    if valid:
                        row.update({f"valid_{k}": v for k, v in evaluate(model, valid, list(range(len(valid))), config, device).items()})
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                    usage = f"; RVQ codes used {row['train_codes_used']} of {config['rvq']['size']}" if "train_codes_used" in row else ""
                    log.info(
                        "step %d train accuracy %.3f (top-%d %.3f, loss %.4f)%s%s",
                        step,
                        row["train_accuracy"],
                        config["top_k"],
                        row[f"train_{top}"],
                        row["train_loss"],
                        f"; valid accuracy {row['valid_accuracy']:.3f} (top-{config['top_k']} {row[f'valid_{top}']:.3f})" if valid else "",
                        usage,
                    )
                    last.update(row)
                dist.barrier()
            stopping = stop_after is not None and step >= stop_after and step < o["max_steps"]
            if step % config["checkpoint_every"] == 0 or step == o["max_steps"] or stopping:
                if dist.main:
                    metrics.flush()
                    _save_checkpoint(output, step, model, optimizer, scheduler, config, features_meta, units_meta)
                    plot_curve(metrics_path, reference, output / "loss_curve.png", config["top_k"])
                dist.barrier()
            if stopping:
                log.info("stopped after step %d as asked; the same command resumes", step)
                return {"stopped_at": step}
    if not dist.main:
        return {}  # the summary, examples and final evaluations are rank 0's

    final, best = {}, None
    for line in metrics_path.read_text().splitlines():
        row = json.loads(line)
        if "train_accuracy" in row:
            final = row
            # Held-out accuracy can peak long before the last step on a small corpus: report where.
            if "valid_accuracy" in row and (best is None or row["valid_accuracy"] > best["valid_accuracy"]):
                best = row
    if best is not None:
        final["best_valid_accuracy"], final["best_valid_step"] = best["valid_accuracy"], best["step"]
    if not config["model"]["zero_speech"]:
        # The trained model with its speech embeddings replaced by zeros: what the speech side adds.
        zeroed = evaluate(model, corpus, eval_train, config, device, zero_speech=True)
        final["train_accuracy_speech_zeroed"] = zeroed["accuracy"]
        if valid:
            final["valid_accuracy_speech_zeroed"] = evaluate(model, valid, list(range(len(valid))), config, device, zero_speech=True)["accuracy"]
    summary = {
        **final,
        **{k: v for k, v in reference.items() if k.endswith("accuracy") or k == "majority_unit"},
        "steps": step,
        "fusion_gate": torch.sigmoid(model.fusion_gate.detach()).item(),
    }
    atomic_write_text(output / "summary.json", json.dumps(summary, indent=2) + "\n")
    shown = valid if valid else corpus
    text = examples(model, shown, d["examples"], device, dtype)
    atomic_write_text(output / "examples.txt", text)
    log.info("examples (%s items, true vs predicted S3 units; also in %s):\n%s", "valid" if valid else "train", output / "examples.txt", text.rstrip())
    zeroed_note = (
        f"; the same model with its speech embeddings zeroed {final['train_accuracy_speech_zeroed']:.3f}"
        if "train_accuracy_speech_zeroed" in final
        else " (trained with the speech embeddings zeroed)"
    )
    log.info(
        "train accuracy %.3f (top-%d %.3f) vs majority-class %.3f and copy-previous %.3f%s",
        final.get("train_accuracy", float("nan")),
        config["top_k"],
        final.get(f"train_{top}", float("nan")),
        reference["train_majority_accuracy"],
        reference["train_copy_previous_accuracy"],
        zeroed_note,
    )
    return summary
