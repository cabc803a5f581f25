"""Auto-tune by injection and recovery: it measures recall and false tracks on the user's frames."""
import numpy as np
from datas_pipeline.movers.autotune import autotune
from datas_pipeline.movers.synthetic import make_mover_sequence


def test_autotune_measures_the_recall_curve_and_picks_a_threshold():
    seq = make_mover_sequence(20, (256, 256), None, seed=31, trail_frames=(4,))
    tuned = autotune(seq.frames, headers=seq.headers, rates=(0.5, 3.0), snrs=(2.0, 3.0, 6.0), crop=256,
                     scores=(6.0, 7.0, 9.0, 14.0))
    assert tuned.injected == 6 and tuned.crop == (0, 0, 256, 256)
    scores = [row["score"] for row in tuned.curve]
    recalls = [row["recall"] for row in tuned.curve]
    assert scores == [6.0, 7.0, 9.0, 14.0]
    assert all(a >= b for a, b in zip(recalls, recalls[1:], strict=False))  # stricter never finds more
    assert tuned.curve[0]["recall_by_snr"]["6"] == 1.0
    assert tuned.curve[-1]["recall_by_snr"]["2"] < 1.0  # SNR 2 over 20 frames is ~9: a 14 cut loses it
    chosen = next(row for row in tuned.curve if row["score"] == tuned.thresholds.score)
    assert chosen["false_tracks"] <= 0.5
    assert np.isclose(tuned.thresholds.half, 3.2 * tuned.thresholds.score / 7.5)
