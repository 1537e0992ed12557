"""Seeds for the checkpoint fuzz target from the committed micro fixtures.
Each seed starts with the selector byte that the target dispatches on."""
import gzip, io, sys, tarfile
from pathlib import Path

here = Path(__file__).parent
fixtures = here.parent.parent.parent / "tests/fixtures/models"
out = Path(sys.argv[1] if len(sys.argv) > 1 else here / "corpus/checkpoint")
out.mkdir(parents=True, exist_ok=True)
nemo_gz = (fixtures / "micro-v1.nemo").read_bytes()
tar_bytes = gzip.decompress(nemo_gz)
ckpt = tarfile.open(fileobj=io.BytesIO(tar_bytes)).extractfile("./model_weights.ckpt").read()
import zipfile
pkl = next(zipfile.ZipFile(io.BytesIO(ckpt)).read(n) for n in zipfile.ZipFile(io.BytesIO(ckpt)).namelist() if n.endswith("data.pkl"))
seeds = {"nemo_tar": b"\x00" + tar_bytes, "nemo_gz": b"\x00" + nemo_gz, "torchzip": b"\x01" + ckpt,
         "pickle": b"\x02" + pkl, "hf_bin": b"\x04" + ckpt}
try:
    from safetensors.torch import save
    import torch
    sd = {k: v for k, v in torch.load(io.BytesIO(ckpt)).items()}
    seeds["hf_safetensors"] = b"\x03" + save({"qa_outputs.weight": torch.zeros(2, 24), "qa_outputs.bias": torch.zeros(2)})
except ImportError:
    pass
for name, data in seeds.items():
    (out / name).write_bytes(data)
print("seeds:", {k: len(v) for k, v in seeds.items()})
