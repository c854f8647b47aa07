"""Content-aware models: they score a movie from what it is (papers 004, 003, 000).

* `base`: `ContentRecommender`, the item-feature pipeline every content model shares.
* `feature_mlp`: paper 004's feature networks ("feature-mlp").
* `text_hybrid`: paper 003's movie-id + title-token networks ("text-hybrid").
* `multimodal`: paper 000's fused text / metadata / poster item tower ("multimodal").
"""
