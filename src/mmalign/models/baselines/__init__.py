"""Baselines of the MM-Align paper (section 4.2), each on the shared backbone."""

from mmalign.models.baselines.lb import SourceOnly
from mmalign.models.baselines.mfm import MFM
from mmalign.models.baselines.modal_trans import ModalTrans
from mmalign.models.baselines.smil import SMIL
from mmalign.models.baselines.ub import BothModalities

__all__ = ["SourceOnly", "BothModalities", "MFM", "SMIL", "ModalTrans"]
