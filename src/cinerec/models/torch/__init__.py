"""Torch models, all trained by the one `cinerec.train.Trainer`: biased MF, AutoRec, paper 002's NCF."""
