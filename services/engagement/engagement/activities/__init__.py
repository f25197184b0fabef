"""Group activities (活动): lotteries, polls, surveys, sign-up chains, campaigns, meetups, celebrations."""
