"""What a score is computed on: the protocol (:mod:`.protocol`), image readers and sets
(:mod:`.datasets`, :mod:`.image_set`, :mod:`.image_folder`) and the data root (:mod:`.data_root`)."""
