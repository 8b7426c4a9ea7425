"""The Oracle and the Classifier: building, fitting, saving and scoring them."""
