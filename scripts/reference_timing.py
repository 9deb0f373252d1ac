"""Time NVIDIA's reference implementation on given weights and inputs (run by scripts/benchmark.py --reference-dir).

Not a module of this repository: it imports only torch and the reference's own modules, so it runs in a separate
process whose import path is the reference checkout (the two repositories have packages of the same names):

    PYTHONPATH=REFERENCE_DIR python scripts/reference_timing.py JOB.pt

JOB.pt holds {"case", "config", "state_dict", "inputs", "repeats", "threads"}; prints the median seconds of the
case as one JSON line. Cases: "decoder" (greedy decoding of given memory), "waveglow" (inference of a mel),
"tacotron2_train" / "waveglow_train" (one Adam step, fp32, as the reference's train.py takes it), "end_to_end"
(inference.py --cpu on one phrase: Tacotron 2, WaveGlow, denoiser; config and state_dict hold both models').
"""
import json
import sys
import time

import torch


def _median(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    job = torch.load(sys.argv[1], weights_only=False)
    torch.set_num_threads(job["threads"])
    from tacotron2.model import Tacotron2  # the reference's modules, from PYTHONPATH
    from waveglow.model import WaveGlow
    case, x = job["case"], job["inputs"]
    if case == "end_to_end":
        from waveglow.denoiser import Denoiser
        t2 = Tacotron2(**job["config"]["tacotron2"])
        t2.load_state_dict(job["state_dict"]["tacotron2"])
        t2.eval()
        wg = WaveGlow(**job["config"]["waveglow"])
        wg.load_state_dict(job["state_dict"]["waveglow"])
        wg = wg.remove_weightnorm(wg).eval()
        denoiser = Denoiser(wg)

        def synthesize() -> None:
            mel, _, _ = t2.infer(x["sequence"], x["lengths"])
            denoiser(wg.infer(mel, sigma=x["sigma"]).float(), strength=x["strength"])
        with torch.no_grad():
            print(json.dumps({"seconds": _median(synthesize, job["repeats"])}))
        return
    if case in ("decoder", "tacotron2_train"):
        model = Tacotron2(**job["config"])
    else:
        model = WaveGlow(**job["config"])
    model.load_state_dict(job["state_dict"])
    if case == "decoder":
        model.eval()
        with torch.no_grad():
            seconds = _median(lambda: model.decoder.infer(x["memory"], x["lengths"]), job["repeats"])
    elif case == "waveglow":
        model = model.remove_weightnorm(model).eval()
        with torch.no_grad():
            seconds = _median(lambda: model.infer(x["mel"], sigma=0.6), job["repeats"])
    else:
        if case == "tacotron2_train":
            from tacotron2.loss_function import Tacotron2Loss
            criterion, batch, target = Tacotron2Loss(), x["batch"], x["target"]
        else:
            from waveglow.loss_function import WaveGlowLoss
            criterion, batch, target = WaveGlowLoss(), x["batch"], x["target"]
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            criterion(model(batch), target).backward()
            optimizer.step()
        seconds = _median(step, job["repeats"], job.get("warmup", 1))
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
