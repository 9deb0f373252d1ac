"""The seed's users switch without changing a command: the seed README's training, inference and latency
commands with its flags and filelist layout, its LJSpeech split, and logs read the way NVIDIA's parsers read them."""
import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from common.dllog import RunLogger, log_path, read_log
from tests.corpus import TINY_T2_FLAGS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_SPLIT = os.path.join(REPO, "..", "shared", "ljspeech-split")
SPLIT = os.path.join(REPO, "filelists", "ljspeech_split")
TINY_WG = {"flows": 4, "groups": 8, "early_every": 2, "early_size": 2, "wn_layers": 2, "wn_channels": 8}

# the seed README's training commands (Training performance results), <placeholders> filled in below
SEED_TRAIN = [
    "{py} train.py -m Tacotron2 -o {out} -lr 1e-3 --epochs 10 -bs {bs} --weight-decay 1e-6 --grad-clip-thresh 1.0 "
    "--cudnn-enabled --log-file nvlog.json --training-files filelists/ljs_audio_text_train_subset_2500_filelist.txt "
    "--dataset-path {data}",
    "{py} train.py -m WaveGlow -o {out} -lr 1e-4 --epochs 10 -bs {bs} --segment-length 8000 --weight-decay 0 "
    "--grad-clip-thresh 65504.0 --cudnn-enabled --cudnn-benchmark --log-file nvlog.json "
    "--training-files filelists/ljs_audio_text_train_subset_1250_filelist.txt --dataset-path {data}",
]


def _seed_tree(corpus: str, root: str) -> str:
    """The seed's layout in `root`: LJSpeech-1.1/wavs/<id>.wav and filelists/ljs_audio_text_*_filelist.txt with
    `LJSpeech-1.1/wavs/<id>.wav|text` lines, phrases/, and the tiny model sizes as --config-file defaults."""
    shutil.copytree(os.path.join(corpus, "wavs"), os.path.join(root, "LJSpeech-1.1", "wavs"))
    os.makedirs(os.path.join(root, "filelists"))
    lists = {"train": ["train_subset_2500", "train_subset_1250"], "val": ["val"]}
    for ours, seeds in lists.items():
        with open(os.path.join(corpus, "filelists", f"espeak_audio_text_{ours}_filelist.txt"), encoding="utf-8") as f:
            lines = [line.replace("wavs/", "LJSpeech-1.1/wavs/", 1) for line in f]
        for seed in seeds:
            with open(os.path.join(root, "filelists", f"ljs_audio_text_{seed}_filelist.txt"), "w") as f:
                f.writelines(lines)
    shutil.copytree(os.path.join(REPO, "phrases"), os.path.join(root, "phrases"))
    for name, flags in (("t2.json", {**TINY_T2_FLAGS, "max_decoder_steps": 30}), ("wg.json", TINY_WG)):
        with open(os.path.join(root, name), "w") as f:
            json.dump(flags, f)
    return root


def _run(command: str, cwd: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO)
    argv = [a.replace("train.py", os.path.join(REPO, "train.py")) if a == "train.py" else a
            for a in shlex.split(command)]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def _nvidia_parse(path: str) -> list:
    """How NVIDIA's log parsers read a DLLogger file: keep lines starting `DLLL `, json.loads(line[5:])."""
    records = []
    with open(path) as f:
        for line in f:
            assert line.startswith("DLLL "), line[:40]
            records.append(json.loads(line[5:]))
    return records


@pytest.fixture(scope="module")
def seed_runs(corpus, tmp_path_factory):
    """Every training command of the seed README (single process and multiproc, AMP and FP32, both models),
    run as written in the seed's layout, one epoch each, with tiny model sizes; returns the tree."""
    root = _seed_tree(corpus, str(tmp_path_factory.mktemp("seed")))
    py = shlex.quote(sys.executable)
    for cmd in SEED_TRAIN:
        model = "t2" if "Tacotron2" in cmd else "wg"
        for launcher in ("", "-m multiproc "):
            for amp in (" --amp-run", ""):
                out = f"out_{model}{'_mp' if launcher else ''}{'_amp' if amp else ''}"
                # --epochs 10 -> 1 and the model's size from a config file: the only changes to the seed's commands
                command = cmd.format(py=f"{py} {launcher}".strip(), out=out, bs=2, data="./")
                command = command.replace("--epochs 10", "--epochs 1") + amp + f" --config-file {model}.json"
                if not amp and model == "wg":
                    command = command.replace("65504.0", "3.4028234663852886e+38")
                _run(command, root)
    return root


def test_seed_training_commands_run_and_log_as_dllogger(seed_runs):
    outs = sorted(d for d in os.listdir(seed_runs) if d.startswith("out_"))
    assert len(outs) == 8
    for out in outs:
        model = "Tacotron2" if out.startswith("out_t2") else "WaveGlow"
        assert os.path.exists(os.path.join(seed_runs, out, f"checkpoint_{model}_0.pt")), out
        records = _nvidia_parse(os.path.join(seed_runs, out, "nvlog.json"))  # -o joined with a bare --log-file
        params = {k: v for r in records if r.get("step") == "PARAMETER" for k, v in r["data"].items()}
        assert params["model_name"] == f"{model}_PyT" and params["amp_run"] == out.endswith("_amp")
        units = {r["metric"]: r["metadata"]["unit"] for r in records if r["type"] == "METADATA"}
        assert units["train_items_per_sec"] == "items/s" and units["run_time"] == "s"
        iters = [r for r in records if r["type"] == "LOG" and isinstance(r["step"], list) and len(r["step"]) == 2]
        epochs = [r for r in records if r["type"] == "LOG" and isinstance(r["step"], list) and len(r["step"]) == 1]
        totals = [r for r in records if r["type"] == "LOG" and r["step"] == []]
        assert iters and all({"train_loss", "train_items_per_sec", "train_iter_time"} <= set(r["data"]) for r in iters)
        assert len(epochs) == 1 and {"train_loss", "train_items_per_sec", "train_epoch_time", "val_loss",
                                     "val_items_per_sec"} <= set(epochs[0]["data"])
        if model == "Tacotron2":  # the health check's figure: a share of the prenet's units
            assert 0 < epochs[0]["data"]["val_prenet_alive"] <= 1
        # as NVIDIA's validate(): items/s of every validation batch at (epoch, iteration, batch), their mean per epoch
        val_batches = [r for r in records if r["type"] == "LOG" and isinstance(r["step"], list) and len(r["step"]) == 3]
        rates = [r["data"]["val_items_per_sec"] for r in val_batches]
        assert rates and all(v > 0 for v in rates) and [r["step"][2] for r in val_batches] == list(range(len(rates)))
        assert abs(epochs[0]["data"]["val_items_per_sec"] - sum(rates) / len(rates)) < 1e-6 * sum(rates)
        assert units["val_items_per_sec"] == "items/s"
        assert len(totals) == 1 and totals[0]["data"]["run_time"] > 0 and totals[0]["data"]["val_items_per_sec"] > 0
        assert all(isinstance(r["timestamp"], str) and isinstance(r["elapsedtime"], str) for r in records)


def test_parse_log_gives_the_seed_tables_and_a_loss_picture(seed_runs):
    proc = _run(f"{shlex.quote(sys.executable)} -m scripts.parse_log {seed_runs}/out_t2_amp/nvlog.json "
                f"{seed_runs}/out_t2/nvlog.json --png {seed_runs}/loss.png", REPO)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("| Loss (Model/Epoch) | 1 |")
    assert lines[2].startswith("| Tacotron 2 AMP | ") and lines[3].startswith("| Tacotron 2 FP32 | ")
    amp_row = next(line for line in lines if line.startswith("| Tacotron 2 | 1 | 2 | AMP |"))
    assert float(amp_row.split("|")[7]) > 0  # speed-up of AMP against the FP32 log
    assert os.path.getsize(os.path.join(seed_runs, "loss.png")) > 5000


def test_parse_log_of_one_folder_reads_both_models_runs(seed_runs, tmp_path):
    """The seed's two training recipes log to the same output/nvlog.json: the second run moves the first's log
    to nvlog.1.json, and parse_log of output/nvlog.json reads both (it showed WaveGlow only)."""
    shutil.copy(os.path.join(seed_runs, "out_t2_amp", "nvlog.json"), tmp_path / "nvlog.1.json")
    shutil.copy(os.path.join(seed_runs, "out_wg_amp", "nvlog.json"), tmp_path / "nvlog.json")
    proc = _run(f"{shlex.quote(sys.executable)} -m scripts.parse_log {tmp_path}/nvlog.json", REPO)
    rows = [line.split("|")[1].strip() for line in proc.stdout.splitlines()[2:4]]
    assert rows == ["Tacotron 2 AMP", "WaveGlow AMP"] and "also reading" in proc.stderr
    only = _run(f"{shlex.quote(sys.executable)} -m scripts.parse_log {tmp_path}/nvlog.json --only-given", REPO)
    assert only.stdout.splitlines()[2].startswith("| WaveGlow AMP |") and "Tacotron 2" not in only.stdout


def test_seed_inference_and_latency_commands(seed_runs):
    t2, wg = "out_t2_amp/checkpoint_Tacotron2_0.pt", "out_wg_amp/checkpoint_WaveGlow_0.pt"
    py = shlex.quote(sys.executable)
    inference = os.path.join(REPO, "inference.py")
    # the seed README's inference commands, as written
    _run(f"{py} {inference} --tacotron2 {t2} --waveglow {wg} -o output/ -i phrases/phrase.txt --amp-run", seed_runs)
    assert os.path.exists(os.path.join(seed_runs, "output", "audio_0.wav"))
    assert _nvidia_parse(os.path.join(seed_runs, "output", "nvlog.json"))
    for prec, amp in (("fp16", " --amp-run"), ("fp32", "")):
        _run(f"{py} {inference} --tacotron2 {t2} --waveglow {wg} -o output/ --include-warmup "
             f"-i phrases/phrase_1_64.txt{amp} --log-file=output/nvlog_{prec}.json", seed_runs)
        log = os.path.join(seed_runs, "output", f"nvlog_{prec}.json")  # as given: not output/output/
        totals = [r for r in _nvidia_parse(log) if r["type"] == "LOG" and r["step"] == []]
        assert totals and totals[0]["data"]["tacotron2_items_per_sec"] > 0
    assert not os.path.exists(os.path.join(seed_runs, "output", "output"))
    # the seed's latency script (run_latency_tests.sh runs it with --num-iters 1003), here 5 runs, 2 timed
    _run(f"bash {os.path.join(REPO, 'test_infer.sh')} -bs 1 -il 128 -p amp --num-iters 5 --tacotron2 {t2} "
         f"--waveglow {wg} --cpu", seed_runs)
    with open(os.path.join(seed_runs, "log_bs1_il128_amp.log")) as f:
        fields = f.read().strip().split(",")
    assert fields[:4] == ["1", "128", "amp", "5"] and len(fields) == 11 and float(fields[4]) > 0  # latency average
    records = _nvidia_parse(os.path.join(seed_runs, "nvlog_bs1_il128_amp.json"))
    assert len([r for r in records if r["type"] == "LOG" and isinstance(r["step"], list) and len(r["step"]) == 1]) == 2  # 3 warm-up runs uncounted


def test_nvidias_current_fp16_spelling_runs_everywhere_amp_does(seed_runs):
    """NVIDIA's current inference commands pass --fp16 where the seed passed --amp-run (inference.py,
    test_infer.py, test_infer.sh --fp16)."""
    t2, wg = "out_t2_amp/checkpoint_Tacotron2_0.pt", "out_wg_amp/checkpoint_WaveGlow_0.pt"
    py = shlex.quote(sys.executable)
    proc = _run(f"{py} {os.path.join(REPO, 'inference.py')} --tacotron2 {t2} --waveglow {wg} --wn-channels 8 "
                f"-o output_fp16/ -i phrases/phrase.txt --fp16", seed_runs)
    assert os.path.exists(os.path.join(seed_runs, "output_fp16", "audio_0.wav")) and "fast path:" in proc.stderr
    _run(f"bash {os.path.join(REPO, 'test_infer.sh')} -bs 1 -il 128 --fp16 --num-iters 4 --tacotron2 {t2} "
         f"--waveglow {wg} --cpu", seed_runs)
    with open(os.path.join(seed_runs, "log_bs1_il128_fp16.log")) as f:
        assert f.read().split(",")[:4] == ["1", "128", "fp16", "4"]


def test_bare_run_latency_tests_times_the_seeds_checkpoint_paths(seed_runs, tmp_path):
    """`bash run_latency_tests.sh` with no arguments: the seed's four cases on ./checkpoints/..._{amp,fp32} where
    they exist (it failed: those paths were never made); asked for missing files, it names them and stops."""
    os.makedirs(tmp_path / "checkpoints")
    for prec in ("amp", "fp32"):
        for model, out in (("Tacotron2", "out_t2_amp"), ("WaveGlow", "out_wg_amp")):
            shutil.copy(os.path.join(seed_runs, out, f"checkpoint_{model}_0.pt"),
                        tmp_path / "checkpoints" / f"checkpoint_{model}_{prec}")
    env = dict(os.environ, ITERS="4", PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    proc = subprocess.run(["bash", os.path.join(REPO, "run_latency_tests.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for case in ("bs1_il128_amp", "bs4_il128_amp", "bs1_il128_fp32", "bs4_il128_fp32"):
        with open(tmp_path / f"log_{case}.log") as f:
            assert f.read().split(",")[:4] == case.replace("bs", "").replace("il", "").split("_") + ["4"]
    proc = subprocess.run(["bash", os.path.join(REPO, "run_latency_tests.sh"), "none.pt", "none.pt", "x", "y"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no checkpoint none.pt or none.pt" in proc.stderr


def test_log_file_rule():
    assert log_path("output/", "nvlog.json") == os.path.join("output/", "nvlog.json")
    assert log_path("output/", "output/nvlog_fp16.json") == "output/nvlog_fp16.json"
    assert log_path("out", "/tmp/x/nv.json") == "/tmp/x/nv.json"


def test_a_new_run_sets_the_old_log_aside_and_a_resumed_run_appends(tmp_path):
    path = str(tmp_path / "nvlog.json")
    for n in range(2):
        logger = RunLogger(path, stdout=False)
        logger.log((0,), {"train_loss": float(n)})
        logger.close()
    assert read_log(path)[-1]["data"] == {"train_loss": 1.0}
    assert read_log(str(tmp_path / "nvlog.1.json"))[-1]["data"] == {"train_loss": 0.0}
    logger = RunLogger(path, stdout=False, append=True)
    logger.log((1,), {"train_loss": 2.0})
    logger.close()
    assert [r["data"]["train_loss"] for r in read_log(path) if r["type"] == "LOG"] == [1.0, 2.0]


def test_seed_flag_forms_parse():
    import train
    base = ["-m", "Tacotron2", "--epochs", "1", "-lr", "1e-3", "-bs", "2"]
    args = train.parse_args(base + ["--output_directory", "o", "--mask-padding", "True"])
    assert args.output == "o" and args.mask_padding is True
    assert train.parse_args(base + ["-o", "o", "--mask-padding"]).mask_padding is True
    assert train.parse_args(base + ["-o", "o", "--mask-padding", "False"]).mask_padding is False
    assert train.parse_args(base + ["-o", "o"]).mask_padding is False


def _ids(name: str, folder: str) -> list:
    with open(os.path.join(folder, f"{name}.ids")) as f:
        return [line.strip() for line in f if line.strip()]


def test_prepare_dataset_writes_the_seed_split(tmp_path):
    names = sorted(f[:-4] for f in os.listdir(SPLIT) if f.endswith(".ids"))
    all_ids = sorted(set(_ids("train", SPLIT)) | set(_ids("val", SPLIT)) | set(_ids("test", SPLIT)))
    assert len(all_ids) == 13100
    data = tmp_path / "LJSpeech-1.1"
    data.mkdir()
    with open(data / "metadata.csv", "w", encoding="utf-8") as f:
        for n, i in enumerate(all_ids):
            f.write(f"{i}|Text No. {n}.|Text number {n}.\n")
    env = dict(os.environ, DATADIR=str(data), FILELISTSDIR=str(tmp_path / "filelists"))
    proc = subprocess.run(["bash", os.path.join(REPO, "scripts", "prepare_dataset.sh")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    number = {i: n for n, i in enumerate(all_ids)}
    for name in names:
        with open(tmp_path / "filelists" / f"ljs_audio_text_{name}_filelist.txt", encoding="utf-8") as f:
            lines = f.read().splitlines()
        ids = [line.split("|")[0][len("LJSpeech-1.1/wavs/"):-len(".wav")] for line in lines]
        assert ids == _ids(name, SPLIT), name
        if os.path.isdir(SHARED_SPLIT):
            assert ids == _ids(name, SHARED_SPLIT), name
        assert lines[0] == f"LJSpeech-1.1/wavs/{ids[0]}.wav|Text number {number[ids[0]]}."  # normalized column
    with open(tmp_path / "filelists" / "ljs_mel_text_val_filelist.txt") as f:
        assert f.readline().startswith(f"LJSpeech-1.1/mels/{_ids('val', SPLIT)[0]}.pt|")
    assert not os.path.exists(tmp_path / "filelists" / "ljs_mel_text_train_subset_64_filelist.txt")


def _train_commands():
    """(script, train.py arguments) of every recipe in scripts/ and platform/."""
    for folder in ("scripts", "platform"):
        for name in sorted(os.listdir(os.path.join(REPO, folder))):
            path = os.path.join(REPO, folder, name)
            if not (name.startswith("train_") and name.endswith(".sh")):
                continue
            with open(path) as f:
                text = f.read().replace("\\\n", " ")
            for line in text.splitlines():
                if " train.py " in line and not line.lstrip().startswith("#"):
                    yield f"{folder}/{name}", shlex.split(line.split(" train.py ", 1)[1].replace('"$@"', ""))


def test_every_training_recipe_parses():
    import train
    commands = list(_train_commands())
    assert len(commands) >= 26  # 24 platform recipes, train_tacotron2.sh, train_waveglow.sh
    for where, argv in commands:
        args = train.parse_args(argv)
        assert args.dataset_path == "./" and args.output, where


def test_inference_checks_wn_channels_against_the_checkpoint(seed_runs):
    wg = os.path.join(seed_runs, "out_wg_amp", "checkpoint_WaveGlow_0.pt")
    t2 = os.path.join(seed_runs, "out_t2_amp", "checkpoint_Tacotron2_0.pt")
    proc = subprocess.run([sys.executable, os.path.join(REPO, "inference.py"), "--tacotron2", t2, "--waveglow", wg,
                           "--wn-channels", "256", "-o", "out_wn/", "-i", "phrases/phrase.txt"],
                          cwd=seed_runs, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "has 8 WN channels" in proc.stderr
    assert not os.path.exists(os.path.join(seed_runs, "out_wn"))


def test_every_entry_point_uses_one_sigma_and_the_recipes_nvidias_anneal_factor():
    """export.py traced WaveGlow at sigma 0.9 while inference used 0.6; scripts/train_tacotron2.sh annealed by 0.1
    where NVIDIA's AMP recipe (and our platform/ copy of it) anneals by 0.3."""
    import export
    import inference
    import test_infer
    from synthesis import SIGMA_INFER
    defaults = {"export": export.parse_args(["-o", "x"]).sigma_infer,
                "inference": inference.parse_args(["-i", "x", "-o", "y", "--tacotron2", "z"]).sigma_infer,
                "test_infer": test_infer.parse_args([]).sigma_infer}
    assert set(defaults.values()) == {SIGMA_INFER} == {0.6}, defaults

    def anneal(path: str) -> str:
        with open(os.path.join(REPO, path)) as f:
            return f.read().split("--anneal-factor ")[1].split()[0]
    assert anneal("scripts/train_tacotron2.sh") == anneal("platform/train_tacotron2_AMP_DGXA100_8GPU.sh") == "0.3"
