"""placeholder"""
def set_progress(x): pass
