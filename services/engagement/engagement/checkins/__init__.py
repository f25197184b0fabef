"""Check-in challenges (打卡): streaks, completion, the check-in leaderboard."""
