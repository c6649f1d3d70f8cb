import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "capture"))
sys.path.insert(0, str(Path(__file__).parents[1] / "decode"))
sys.path.insert(0, str(Path(__file__).parents[1] / "rules"))
