"""What to try: freeze masks, fixed mask pairs, Hypothesis strategies and the driver."""
