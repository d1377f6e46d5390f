"""The training loop: one process, or DDP under torchrun (gloo on CPU, NCCL on GPU).

State lives in OUTPUT_DIR:
  checkpoints/step-NNNNNNN.pt   model, optimiser, schedule, RNG states, step (every N steps)
  model.safetensors, config.json the latest weights as a model directory (what bsq-encode reads)
  train_config.yaml             the resolved config; valid_keys.txt: the held-out utterances
  metrics.jsonl                 one line per logged step and per validation
  loss_curve.png                training loss and validation MSE by step
A run finding a checkpoint resumes from it. Batches are a function of the step
(see data.py) and the CPU runs deterministic kernels, so a resumed run logs the
same losses, step for step, as one that was never stopped.
"""

import json
import logging
import time
from pathlib import Path

import torch

from audiotok.distributed import Distributed, check_batch_split
from audiotok.training import lr_factor, resume_from_checkpoint, save_figure, truncate_metrics, write_checkpoint

log = logging.getLogger("audiotok")


def masked_errors(reconstruction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-utterance MSE and MAE over real frames, averaged over the batch (a mean of
    per-sample means, so DDP's average over equal shares equals the global value)."""
    diff = (reconstruction.to(target.dtype) - target) * mask.unsqueeze(-1)
    count = mask.sum(1) * target.shape[-1]
    return ((diff**2).sum((1, 2)) / count).mean(), (diff.abs().sum((1, 2)) / count).mean()


def _save_checkpoint(output: Path, step: int, model, optimizer, scheduler, config: dict) -> None:
    from audiotok.bsq import modeldir

    write_checkpoint(output, step, model.state_dict(), optimizer, scheduler, config["optim"]["keep_checkpoints"])
    modeldir.save(output, model, config, {"trained_steps": step})


def plot_curve(metrics_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    train = [(r["step"], r["recon_mse"]) for r in rows if "recon_mse" in r]
    valid = [(r["step"], r["valid_mse"]) for r in rows if "valid_mse" in r]
    figure, axis = plt.subplots(figsize=(7, 4))
    if train:
        axis.plot(*zip(*train), label="train mel MSE")
    if valid:
        axis.plot(*zip(*valid), "o-", label="held-out mel MSE")
    axis.set_xlabel("step")
    axis.set_ylabel("MSE (scaled mel, [-1, 1])")
    axis.set_yscale("log")
    axis.legend()
    axis.grid(alpha=0.3)
    save_figure(figure, png)


def validate(model, corpus) -> dict:
    """Whole held-out utterances through encode/decode windows, scored as bsq-eval scores
    them (frame-weighted): mel MSE, MAE and the mean-spectrum baseline MSE."""
    from audiotok.bsq.evaluate import mel_scores, summarise

    model.eval()
    with torch.no_grad():
        summary = summarise([mel_scores(model, corpus.mel(index).float())[0] for index in range(len(corpus))])
    model.train()
    return {"valid_mse": summary["mse"], "valid_mae": summary["mae"], "valid_baseline_mse": summary["baseline_mse"]}


def train(config: dict, output: Path, device: str = "auto", stop_after: int | None = None) -> dict:
    """Train (or resume) into `output`; returns the last metrics line."""
    import yaml

    from audiotok.bsq.config import frontend_options
    from audiotok.bsq.data import MelCorpus, split_train_valid, training_batch
    from audiotok.bsq.mel import frontend_from_options
    from audiotok.bsq.model import AudioBSQModel
    from audiotok.io.atomic import atomic_write_text

    o = config["optim"]
    check_batch_split(o["batch_size"])
    dist = Distributed(device)
    output.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(o["seed"])
    frontend = frontend_from_options(frontend_options(config))
    train_set, valid_set = split_train_valid(config)
    corpus, valid_corpus = MelCorpus(train_set, frontend), MelCorpus(valid_set, frontend)
    dtype = getattr(torch, o["dtype"])
    model = AudioBSQModel(config["model"]).to(dist.device, dtype)
    optimizer = torch.optim.AdamW(model.parameters(), lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"], weight_decay=o["weight_decay"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, o))

    step = resume_from_checkpoint(output, dist.device, lambda state, path: model.load_state_dict(state), optimizer, scheduler)
    metrics_path = output / "metrics.jsonl"
    if dist.main:
        truncate_metrics(metrics_path, step)
        atomic_write_text(output / "train_config.yaml", yaml.safe_dump(config, sort_keys=False))
        atomic_write_text(output / "valid_keys.txt", "".join(u.key + "\n" for u in valid_set))
        params = sum(p.numel() for p in model.parameters())
        log.info(
            "%d training and %d held-out utterances; %.2fM parameters; %d process(es) on %s",
            len(train_set),
            len(valid_set),
            params / 1e6,
            dist.world,
            dist.device,
        )

    trained = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
    use_bf16 = o["mixed_precision"] and dist.device.type == "cuda"
    model.train()
    last = {}
    started, started_step = time.time(), step
    metrics = open(metrics_path, "a", encoding="utf-8") if dist.main else None
    try:
        while step < o["max_steps"]:
            inputs, targets, masks = (t.to(dist.device, dtype) for t in training_batch(corpus, config, step, dist.rank, dist.world))
            with torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                reconstruction, quant_loss, info = trained(inputs)
            mse, mae = masked_errors(reconstruction, targets, masks)
            loss = mse + quant_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), o["grad_clip"])
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            step += 1
            if step % o["log_every"] == 0 or step == o["max_steps"]:
                values = dist.mean(
                    torch.stack([loss.detach(), mse.detach(), mae.detach(), quant_loss.detach(), info["per_sample_entropy"], info["codebook_entropy"]]).double()
                ).tolist()
                if dist.main:
                    last = {
                        "step": step,
                        "loss": values[0],
                        "recon_mse": values[1],
                        "recon_mae": values[2],
                        "quant_loss": values[3],
                        "per_sample_entropy": values[4],
                        "codebook_entropy": values[5],
                        "lr": lr,
                        "grad_norm": float(grad_norm),
                    }
                    metrics.write(json.dumps(last) + "\n")
                    metrics.flush()
                    rate = (time.time() - started) / (step - started_step)
                    log.info(
                        "step %d/%d loss %.4f mel-mse %.4f mae %.4f H %.2f/%.2f lr %.2e %.2f s/step",
                        step,
                        o["max_steps"],
                        values[0],
                        values[1],
                        values[2],
                        values[4],
                        values[5],
                        lr,
                        rate,
                    )
            if valid_corpus.utterances and (step % o["valid_every"] == 0 or step == o["max_steps"]):
                if dist.main:
                    scores = validate(model, valid_corpus)
                    metrics.write(json.dumps({"step": step, **scores}) + "\n")
                    metrics.flush()
                    log.info(
                        "step %d held-out mel MSE %.4f MAE %.4f (mean-spectrum baseline MSE %.4f)",
                        step,
                        scores["valid_mse"],
                        scores["valid_mae"],
                        scores["valid_baseline_mse"],
                    )
                    last.update(scores)
                dist.barrier()
            stopping = stop_after is not None and step >= stop_after
            if step % o["checkpoint_every"] == 0 or step == o["max_steps"] or stopping:
                if dist.main:
                    metrics.flush()
                    _save_checkpoint(output, step, model, optimizer, scheduler, config)
                    plot_curve(metrics_path, output / "loss_curve.png")
                dist.barrier()
            if stopping:
                log.info("stopped after step %d as asked; the same command resumes", step)
                break
    finally:
        if metrics is not None:
            metrics.close()
        dist.close()
    return last
