"""Runs transformers' TF ELECTRA classes (tf-keras, TF_USE_LEGACY_KERAS=1) in a separate process, since
impl_tf runs on Keras 3. Usage: python tf_reference_worker.py jobs.json

jobs.json: a list of jobs, each
  {"action": "convert", "class": "TFElectraForMaskedLM", "src": <dir with PT safetensors>, "dst": <dir>}
      load with from_pt=True and save_pretrained (writes tf_model.h5 + config.json) into dst;
  {"action": "run", "class": ..., "src": <dir with tf_model.h5>, "inputs": <npz>, "out": <npz>}
      load from the h5 and write every tensor output field of a call on the npz's inputs.
"""
import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import transformers  # noqa: E402


def main(path):
    for job in json.load(open(path)):
        cls = getattr(transformers, job["class"])
        if job["action"] == "convert":
            cls.from_pretrained(job["src"], from_pt=True).save_pretrained(job["dst"])
        else:
            model = cls.from_pretrained(job["src"])
            inputs = dict(np.load(job["inputs"]))
            out = model(**inputs, training=False)
            np.savez(job["out"], **{k: np.asarray(v) for k, v in out.items() if hasattr(v, "shape")})


if __name__ == "__main__":
    main(sys.argv[1])
