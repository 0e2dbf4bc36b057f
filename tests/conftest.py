import torch

# Tiny test models are fastest on one thread, and the CI machine's 2 cores are shared with
# pytest itself: oversubscription made single runs up to 10x slower.
torch.set_num_threads(1)
