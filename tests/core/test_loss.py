import pytest
import torch

from racecar_study.core import racecar_loss


def test_sum_convention_is_tensorflow_l2_loss():
    d, r = [torch.ones(2, 3)], [torch.zeros(2, 3)]
    total, per = racecar_loss(d, r, 2.0, "sum")
    assert per.tolist() == [3.0] and total.item() == 6.0


def test_mean_convention_and_per_layer_lambdas():
    d = [torch.ones(2, 3), torch.full((4,), 2.0)]
    r = [torch.zeros(2, 3), torch.zeros(4)]
    total, per = racecar_loss(d, r, [1.0, 0.5], "mean")
    assert per.tolist() == [1.0, 4.0] and total.item() == 3.0


def test_wrong_lambda_count_and_reduction():
    d, r = [torch.ones(2)], [torch.zeros(2)]
    with pytest.raises(ValueError, match="2 lambdas given for 1 layers"):
        racecar_loss(d, r, [1.0, 2.0])
    with pytest.raises(ValueError, match="reduction"):
        racecar_loss(d, r, 1.0, "max")
