"""The report's answers and conclusions are written from the numbers they are given (report/conclusions.py)."""
from mnistlab.report.conclusions import classification_answers, sweep_summary
from mnistlab.report.html import render_report


def study(values, accs):
    return {"rows": [{"value": v, "test_accuracy": a, "train_loss": 0.1, "test_loss": 0.2}
                     for v, a in zip(values, accs)]}


def test_sweep_summary_finds_the_best_and_where_it_flattens():
    s = sweep_summary(study([1, 2, 4, 8, 16], [0.90, 0.95, 0.970, 0.9705, 0.969]))
    assert s["best"] == 8 and s["worst"] == 1 and s["flat_from"] == 4 and s["values"] == 5
    assert sweep_summary(study([1, 2, 4], [0.9, 0.95, 0.97]))["flat_from"] == 4  # still rising at the end
    assert sweep_summary({"rows": []}) == {}


def test_answers_follow_the_numbers():
    studies = {"iterations": study([1, 2, 4, 8, 16], [0.90, 0.95, 0.970, 0.9705, 0.969]),
               "lr": study([1e-4, 1e-3, 1e-2, 1e-1, 1], [0.80, 0.95, 0.97, 0.93, 0.10]),
               "hidden": study([16, 32, 128, 512, 1024], [0.93, 0.95, 0.97, 0.975, 0.976]),
               "cv": {"selected": {"name": "h256"}, "selected_test_accuracy": 0.97,
                      "kfold": {"k": 3, "test_accuracy_mean": 0.968, "test_accuracy_std": 0.002}}}
    rej = {"test_accuracy": 0.99, "rules": {"chow": {"at_threshold": {"rejection_rate": 0.05,
                                                                        "accuracy_accepted": 0.999}}},
           "rejected_fraction": {"fashion-mnist": {"distance": 0.93}}}
    post = {"all_rows_sum_to_one": True, "max_abs_sum_error": 2e-7, "images": 70000}
    answers, conclusion = classification_answers({"test_accuracy": 0.992}, {"test_accuracy": 0.981}, post, rej,
                                                 studies, {"lr": "study-lr/study_costs.png"})
    text = {a["question"].split(" — ")[0]: a["answer"] for a in answers}
    assert text["Q1.5"] == "CNN 99.20 %, MLP 98.10 %"
    assert text["Part 2"].startswith("best at learning rate 0.01 (97.00 % held-out, 5 values)")
    assert "worst 1 (10.00 %)" in text["Part 2"]
    assert "3-fold CV: 96.80 % ± 0.20 %" in text["Q2"] and text["Q4"].startswith("yes")
    assert "Chow rejects 5.00 %" in text["Q5"] and "93.00 % of Fashion-MNIST" in text["Q5"]
    assert "worth more than any MLP setting" in conclusion  # 99.2 > every MLP figure given
    assert "within 0.2 point of the best from 4 epochs on" in conclusion
    assert "by 87.0 points" in conclusion and "still rising" not in conclusion.split("Hidden")[0]
    _, weaker = classification_answers({"test_accuracy": 0.95}, {"test_accuracy": 0.981}, post, rej, studies, {})
    assert "does not beat every MLP setting" in weaker


def test_report_opens_with_the_answers_and_ends_sections_with_conclusions(tmp_path):
    sec = {"id": "s", "title": "S", "figures": [{"path": "a.png", "caption": "cap a"}],
           "answers": [{"question": "Q", "answer": "42", "figure": "a.png"}], "conclusion": "It works.",
           "tables": [{"title": "t", "kind": "study", "columns": ["v"], "rows": [[1], [2]]}]}
    page = render_report([(sec, tmp_path)], title="T")
    assert page.index("Results at a glance") < page.index("Contents") < page.index("It works.")
    assert "<a href='#s-fig0'>cap a</a>" in page and "data-kind='study'" in page
    assert "<div class=conclusion>" in page
